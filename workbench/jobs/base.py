"""The job seam: what runs on one shard and yields records.

A job is a small picklable dataclass. ``run(task)`` executes on a worker (a Dask thread or
process, a remote node) and returns the shard's result lines as TSV bytes in the job's column
order, so every backend can stream them unchanged: the CLI writes them as they are, the API
turns them into Arrow record batches. ``command(task)`` gives the same work as an argv for
backends that run commands (containers); ``None`` means "run the Python worker entry point".
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from workbench.storage.integrity import check_task_files
from workbench.storage.manifest import ShardInfo
from workbench.util.memory import release_freed_memory

if TYPE_CHECKING:
    import pyarrow as pa

    from workbench.storage.manifest import Manifest


@dataclass(frozen=True)
class ShardTask:
    """One shard as seen where the task runs: ``root`` is the dataset directory on that node."""

    root: str
    shard: ShardInfo

    @property
    def path(self) -> str:
        return os.path.join(self.root, self.shard.path)

    @property
    def index_path(self) -> str:
        return os.path.join(self.root, self.shard.index_path)


@dataclass
class ShardOutput:
    """What a job produced for one shard: TSV lines (``\\n``-terminated), a hit count, and notes
    for the caller (one line each: results are still exact, e.g. a damaged index file searched by text)."""

    payload: bytes
    hits: int
    notes: list[str] = field(default_factory=list)


@dataclass
class ShardResult:
    """A finished shard, with where and how long it ran."""

    shard: str
    payload: bytes
    hits: int
    bytes: int
    records: int
    seconds: float
    worker: str
    node: str
    notes: list[str] = field(default_factory=list)
    attempts: int = 1  # set by the run: 1 + the failed attempts before this one
    started: float = 0.0  # when the successful attempt started (seconds since the epoch)

    def stats(self) -> dict[str, Any]:
        d = asdict(self)
        del d["payload"], d["notes"]
        return d


Column = tuple[str, str]  # (name, arrow type name)


class Job(ABC):
    """Base class of every job. Subclasses are dataclasses registered in ``workbench.jobs.JOBS``."""

    name: ClassVar[str]
    columns: ClassVar[tuple[Column, ...]] = (("cid", "int64"), ("smiles", "string"))
    #: "threads" when the work runs in a subprocess or releases the GIL, else "processes".
    executor: ClassVar[Literal["threads", "processes"]] = "threads"
    #: True when ``payload`` is empty and only ``hits`` matters (``-c``).
    count_only: bool = False

    def prepare(self, manifest: "Manifest") -> list[str]:
        """Validate on the client before any shard runs (bad pattern, missing tool, incompatible
        index); return notes for the caller (no index: parsing every SMILES)."""
        return []

    @abstractmethod
    def run(self, task: ShardTask) -> ShardOutput:
        """Do the work for one shard, on the worker."""

    def command(self, task: ShardTask) -> list[str] | None:
        """The same work as an argv whose stdout ``parse_output`` reads, or None."""
        return None

    def parse_output(self, stdout: bytes) -> ShardOutput:
        """Turn the stdout of ``command`` (or of the worker entry point) into a ShardOutput."""
        if self.count_only:
            text = stdout.strip()
            return ShardOutput(b"", int(text) if text else 0)
        return ShardOutput(stdout, stdout.count(b"\n"))

    @property
    def final_step(self) -> bool:
        """True when the job's lines need a step over every shard's (sort, top-K, reduce):
        the runner then holds them and calls ``finish_payloads``; else lines stream as shards finish."""
        return False

    def finish_payloads(self, payloads: list[bytes]) -> bytes:
        """The final step: every shard's lines in, the job's result lines out."""
        return b"".join(payloads)

    def final_count(self, hits: int) -> int:
        """A count-only run's total from the sum of its shards' counts."""
        return hits

    # -- (de)serialisation: the container worker entry point receives a job as JSON --
    def spec(self) -> dict[str, Any]:
        return {"job": self.name, **{f.name: getattr(self, f.name) for f in fields(self)}}  # type: ignore[arg-type]

    def schema(self) -> "pa.Schema":
        import pyarrow as pa

        return pa.schema([(n, pa.type_for_alias(t)) for n, t in self.columns])


def run_shard(job: Job, task: ShardTask) -> ShardResult:
    """Execute ``job`` on ``task`` and time it; this is the function every backend ships."""
    check_task_files(task.root, task.shard, node_name())  # a symlink out, or a changed copy, is refused
    start = time.perf_counter()
    out = job.run(task)
    seconds = time.perf_counter() - start
    if job.executor == "processes":  # a worker process keeps none of this shard's intermediates resident
        release_freed_memory()
    return shard_result(task, out, seconds, worker_name(), node_name())


def shard_result(task: ShardTask, out: ShardOutput, seconds: float, worker: str, node: str) -> ShardResult:
    """A finished shard's result: its output with the shard's size and where and how long it ran."""
    return ShardResult(shard=task.shard.name, payload=out.payload, hits=out.hits, bytes=task.shard.bytes,
                       records=task.shard.records, seconds=seconds, worker=worker, node=node, notes=out.notes,
                       started=time.time() - seconds)


def node_name() -> str:
    """The node a task ran on: ``WORKBENCH_NODE`` (set by cluster workers) or the hostname."""
    return os.environ.get("WORKBENCH_NODE") or socket.gethostname()


def worker_name() -> str:
    """The Dask worker's name inside a distributed worker, else ``pid/thread``."""
    if "distributed" in sys.modules:  # never import distributed just to ask (it costs ~0.3 s)
        try:
            from distributed import get_worker

            worker = get_worker()
            return str(worker.name)
        except ValueError:
            pass
    return f"{os.getpid()}/{threading.current_thread().name}"
