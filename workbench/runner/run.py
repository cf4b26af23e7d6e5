"""Run a job over a dataset on a backend: shard results as they finish, the job's final step, stats.

``Run`` owns the one final step of every job (``Job.finish_payloads``: sort, top-K, reduce), so
the CLI and the Python API give identical results: iterate ``payloads()`` (what the CLI prints),
or take ``batches()`` / ``table()`` (Arrow) — all three are the same records.

Notes (the job's, from its ``prepare`` step, and each shard's) are kept in ``Run.notes`` and issued
as ``WorkbenchNote`` warnings as they come; the CLI prints them as ``note: …`` lines.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.backends.base import Backend
from workbench.errors import WorkbenchNote
from workbench.jobs.base import Job, ShardResult
from workbench.runner.stats import RunStats, cpu_seconds
from workbench.storage.integrity import check_sizes
from workbench.storage.manifest import Manifest
from workbench.storage.results import payload_to_batch

if TYPE_CHECKING:
    import pyarrow as pa


class Run:
    """Iterate to get ``ShardResult`` s as shards finish (before the job's final step); or take
    ``payloads()``, ``batches()``, ``table()`` (after it). Afterwards ``stats`` holds the totals."""

    def __init__(self, job: Job, root: Path, manifest: Manifest, backend: Backend, progress: bool = False):
        self.job, self.root, self.manifest, self.backend = job, root, manifest, backend
        self.progress = progress
        self.stats = RunStats(job=job.name, backend=backend.describe(), workers=backend.workers,
                              shards_total=len(manifest.shards))
        #: Records in the final output (for count-only jobs: the total count), once ``payloads()`` ended.
        self.count = 0
        #: What the caller should know (no index, a damaged index file searched by text), in order.
        self.notes: list[str] = []

    def payloads(self) -> Iterator[bytes]:
        """The job's result lines after its final step: as shards finish when the job has none,
        else in one piece after the last shard. Sets ``count``."""
        job, held = self.job, []
        for result in self:
            if job.count_only:
                continue
            if job.final_step:
                held.append(result)
            else:  # one (possibly empty) payload per shard
                self.count += result.payload.count(b"\n")
                yield result.payload
        if job.count_only:
            self.count = job.final_count(self.stats.hits)
        elif job.final_step:  # in dataset order, whatever order shards finished in
            order = {s.name: i for i, s in enumerate(self.manifest.shards)}
            held.sort(key=lambda r: order.get(r.shard, len(order)))
            final = job.finish_payloads([r.payload for r in held])
            self.count = final.count(b"\n")
            yield final

    def batches(self) -> Iterator["pa.RecordBatch"]:
        """``payloads()`` as Arrow record batches of the job's schema."""
        schema = self.job.schema()
        for payload in self.payloads():
            yield payload_to_batch(payload, schema)

    def table(self) -> "pa.Table":
        """Every result record as one Arrow table (after the job's final step)."""
        import pyarrow as pa

        return pa.Table.from_batches(list(self.batches()), schema=self.job.schema())

    def note(self, text: str) -> None:
        """Keep ``text`` in ``notes`` and issue it as a ``WorkbenchNote`` warning."""
        self.notes.append(text)
        warnings.warn(text, WorkbenchNote, stacklevel=2)

    def __iter__(self) -> Iterator[ShardResult]:
        check_sizes(self.root, self.manifest)  # cheap (one stat per shard): a changed shard never runs
        for text in self.backend.prepare(self.job, self.manifest) or []:  # a job without notes may return None
            self.note(text)
        start, cpu0 = time.perf_counter(), cpu_seconds()
        bar = _progress(self.stats) if self.progress else None
        try:
            for result in self.backend.map_shards(self.job, self.root, self.manifest):
                self.stats.add(result)
                for text in result.notes:
                    self.note(text)
                if bar is not None:
                    bar.update()
                yield result
        finally:
            self.stats.seconds = time.perf_counter() - start
            self.stats.cpu_seconds = cpu_seconds() - cpu0
            if bar is not None:
                bar.close()


class _progress:
    """A rich progress bar on stderr: shards done/total, MB/s, hits, ETA."""

    def __init__(self, stats: RunStats):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.stats, self.start = stats, time.perf_counter()
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True)
        self.task = self.bar.add_task(stats.job, total=stats.shards_total, rate="")
        self.bar.start()

    def update(self) -> None:
        s = self.stats
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        self.bar.update(self.task, advance=1, rate=f"{s.bytes / 1e6 / elapsed:,.0f} MB/s  {s.hits:,} hits")

    def close(self) -> None:
        self.bar.stop()
