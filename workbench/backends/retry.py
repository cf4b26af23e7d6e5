"""The one retry policy of shard tasks, shared by both mechanisms (threads and Dask futures).

A run passes one ``RetryPolicy`` (retries, shard timeout, keep going) down to its backend's
mechanism. The mechanism runs each attempt (``run_scoped`` enforces the timeout on the thread or
worker that runs it), hands its outcome — a ``ShardResult`` or a ``Failed`` attempt — to
``Attempts.settle``, and then either runs the shard again (on another worker or node where the
backend can choose one, see ``Tries``), yields its result, or, on a final failure, raises
``JobError`` naming the shard (``keep_going``: yields a ``ShardFailure`` and goes on). A failed
attempt yields nothing, so a shard's lines reach the output exactly once.

Transient failures are retried (``workbench.errors.transient``: a killed process or container, a
lost worker, node or engine, a timeout, an OS or memory error); everything else is final at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.errors import BackendError, JobError, TransientError, WorkbenchError, transient
from workbench.jobs.base import Job, ShardResult, ShardTask, node_name, run_shard, worker_name
from workbench.util.scope import run_scoped

DEFAULT_RETRIES = 2


@dataclass(frozen=True)
class RetryPolicy:
    """How a run treats failing shard attempts (``--retries``, ``--shard-timeout``, ``--keep-going``)."""

    retries: int = DEFAULT_RETRIES
    shard_timeout: float | None = None
    keep_going: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.retries, int) or self.retries < 0:
            raise WorkbenchError(f"invalid retries {self.retries!r}: must be a whole number, 0 or more")
        if self.shard_timeout is not None and not self.shard_timeout > 0:
            raise WorkbenchError(f"invalid shard timeout {self.shard_timeout!r}: must be more than 0 seconds")


@dataclass
class Failed:
    """One failed attempt: the error and where it ran (when known)."""

    error: BaseException
    worker: str = ""
    node: str = ""


@dataclass
class ShardFailure:
    """A shard that failed for good (its last error), reported by a keep-going run."""

    shard: str
    error: str
    attempts: int
    node: str = ""
    worker: str = ""

    def stats(self) -> dict[str, Any]:
        return asdict(self)

    def as_error(self) -> JobError:
        """The ``JobError`` a run stops with (``failure`` carries this record)."""
        exc = JobError(f"shard {self.shard} failed: {self.error}")
        exc.failure = self  # type: ignore[attr-defined]
        return exc


@dataclass
class Tries:
    """One shard's attempts so far; a mechanism's call may set ``worker``/``node`` to where the
    current attempt runs, and read ``failed_nodes`` to run the next attempt elsewhere."""

    task: ShardTask
    count: int = 0
    failed_workers: list[str] = field(default_factory=list)
    failed_nodes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    worker: str = ""
    node: str = ""


class Attempts:
    """The policy applied to every attempt of one run's shards."""

    def __init__(self, policy: RetryPolicy, tasks: Sequence[ShardTask]):
        self.policy = policy
        self.tries = {t.shard.name: Tries(t) for t in tasks}
        self.retries = 0

    def start(self, task: ShardTask) -> Tries:
        """Count a new attempt of ``task``'s shard (``task`` may name another root than the last one)."""
        tries = self.tries[task.shard.name]
        tries.task, tries.worker, tries.node = task, "", ""
        tries.count += 1
        return tries

    def settle(self, tries: Tries, outcome: ShardResult | Failed) -> ShardResult | ShardFailure | None:
        """The attempt's result; None: run it again; a final failure raises (or, keeping going, is returned)."""
        if isinstance(outcome, ShardResult):
            outcome.attempts = tries.count
            return outcome
        worker, node = outcome.worker or tries.worker, outcome.node or tries.node
        if worker:
            tries.failed_workers.append(worker)
        if node:
            tries.failed_nodes.append(node)
        tries.errors.append(describe(outcome.error))
        if transient(outcome.error) and tries.count <= self.policy.retries:
            self.retries += 1
            return None
        return self.give_up(tries, outcome.error, worker, node)

    def give_up(self, tries: Tries, error: BaseException, worker: str = "", node: str = "") -> ShardFailure:
        """A final failure: raised as ``JobError`` naming the shard, unless the run keeps going."""
        failure = ShardFailure(tries.task.shard.name, describe(error) + _after(tries.count), tries.count, node, worker)
        if not self.policy.keep_going:
            raise failure.as_error()
        return failure


def describe(exc: BaseException) -> str:
    """A failure's cause in one line."""
    return str(exc) if isinstance(exc, WorkbenchError) else f"{type(exc).__name__}: {exc}"


def _after(count: int) -> str:
    return f" (after {count} attempts)" if count > 1 else ""


def attempt_shard(job: Job, task: ShardTask, timeout: float | None) -> ShardResult | Failed:
    """One attempt on a Dask worker: ``run_shard`` under the timeout (interrupting Python work,
    as a last resort ending the worker process); a failure comes back as a value naming the worker."""
    try:
        return run_scoped(lambda t: run_shard(job, t), task, timeout, interrupt=True)
    except Exception as exc:
        return Failed(exc, worker_name(), node_name())


def no_worker(exc: BaseException) -> Failed | None:
    """Dask's report of a task that waited its ``no-workers-timeout`` with no worker running, as a
    final failure (the pool's processes died and none started again)."""
    if type(exc).__name__ != "NoWorkerError":
        return None
    timeout = getattr(exc, "timeout", None)
    waited = f"{timeout:g} s" if isinstance(timeout, (int, float)) else "the no-workers timeout"
    return Failed(BackendError(f"no worker process ran for {waited}: they died and none started again "
                               "(their errors are above)"))


def lost_worker(exc: BaseException) -> Failed | None:
    """Dask's report of a worker that died running the task (``KilledWorker``), as a transient failure."""
    if type(exc).__name__ != "KilledWorker":
        return None
    last = getattr(exc, "last_worker", None)
    name = getattr(last, "name", None)  # (a local cluster's worker names are 0, 1, …)
    name = str(name if name is not None else getattr(last, "address", "") or "")
    return Failed(TransientError(f"worker {name or '?'} was lost while running it (killed, out of memory, "
                                 f"or its node went down)"), worker=name)
