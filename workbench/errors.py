"""Typed errors. The CLI turns every ``WorkbenchError`` into one ``error: …`` line and exit 2."""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base class: a problem the user can act on (bad input, missing tool, unreachable node)."""

    exit_code = 2


class DatasetError(WorkbenchError):
    """A dataset directory is missing, malformed or incompatible."""


class IngestError(WorkbenchError):
    """A source could not be read completely (truncated gzip, I/O error, refused target)."""


class QueryError(WorkbenchError):
    """A pattern or query is invalid (bad regex, invalid SMARTS/SMILES)."""


class EngineNotFound(WorkbenchError):
    """The requested tool (grep engine, docker, ssh) is not installed."""


class JobError(WorkbenchError):
    """A shard task failed; the message names the shard."""


class TransientError(JobError):
    """A shard attempt failed for a reason that need not repeat: its process or container was killed or
    crashed, its worker, node or engine was lost, it timed out. Such attempts are retried (``--retries``)."""


class ShardTimeout(TransientError):
    """A shard attempt ran longer than ``--shard-timeout`` and was killed."""


class BackendError(WorkbenchError):
    """A backend could not start or lost contact (scheduler, Docker engine, node)."""


class ChemIndexError(WorkbenchError):
    """A chemistry index is missing or was built with incompatible parameters."""


class ClusterError(WorkbenchError):
    """Cluster file, SSH, placement or testbed problem."""


class WorkbenchNote(UserWarning):
    """Something the caller should know about a run that still gives exact results (no index, a
    damaged index file searched by text). Also kept in ``Run.notes``; the CLI prints ``note: …``."""


class JournalError(WorkbenchError):
    """A run journal (``-o FILE`` with ``--resume``) cannot be used: other parameters, or unreadable."""


class PartialResult(UserWarning):
    """A keep-going run returned the results of some shards only: the others failed for good."""


def transient(exc: BaseException) -> bool:
    """Whether a shard attempt that raised ``exc`` may succeed when run again.

    Transient: ``TransientError`` (killed process or container, lost worker, timeout), memory
    exhaustion and OS-level errors (I/O errors, lost connections). Final: every other
    ``WorkbenchError`` (the job reported what is wrong: grep exit 2, a command's exit status) and
    any other exception raised by the job's own code.
    """
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, WorkbenchError):
        return False
    return isinstance(exc, (MemoryError, OSError))


class NodeUnreachable(ClusterError):
    """A node could not be reached; ``reason`` is one short phrase (connection refused, timeout, …)."""

    def __init__(self, node: str, reason: str):
        super().__init__(f"node {node!r} is unreachable: {reason}")
        self.node, self.reason = node, reason
