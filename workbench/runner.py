"""Run a job over a dataset on a backend, streaming shard results and collecting stats."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from workbench.backends.base import Backend
from workbench.dataset.manifest import Manifest
from workbench.jobs.base import Job, ShardResult
from workbench.stats import RunStats, cpu_seconds


class Run:
    """Iterate to get ``ShardResult`` s as shards finish; afterwards ``stats`` holds the totals."""

    def __init__(self, job: Job, root: Path, manifest: Manifest, backend: Backend, progress: bool = False):
        self.job, self.root, self.manifest, self.backend = job, root, manifest, backend
        self.progress = progress
        self.stats = RunStats(job=job.name, backend=backend.describe(), workers=backend.workers,
                              shards_total=len(manifest.shards))

    def __iter__(self) -> Iterator[ShardResult]:
        self.backend.prepare(self.job, self.manifest)
        start, cpu0 = time.perf_counter(), cpu_seconds()
        bar = _progress(self.stats) if self.progress else None
        try:
            for result in self.backend.map_shards(self.job, self.root, self.manifest):
                self.stats.add(result)
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
