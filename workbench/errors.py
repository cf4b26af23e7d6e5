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


class BackendError(WorkbenchError):
    """A backend could not start or lost contact (scheduler, Docker engine, node)."""


class IndexError_(WorkbenchError):
    """A chemistry index is missing or was built with incompatible parameters."""


class ClusterError(WorkbenchError):
    """Cluster file, SSH, placement or testbed problem."""


class WorkbenchNote(UserWarning):
    """Something the caller should know about a run that still gives exact results (no index, a
    damaged index file searched by text). Also kept in ``Run.notes``; the CLI prints ``note: …``."""
