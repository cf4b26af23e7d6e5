"""The measurement every benchmark makes: one untimed warm-up, then timed repeats, each starting
from a known page-cache state.

``warm``: the repeats follow the warm-up, so the dataset's pages are (as far as memory allows) in
the page cache. ``cold``: before each repeat the dataset's files (shards and index files) are
dropped from the page cache (``posix_fadvise DONTNEED``, no root needed), so the run reads them from
the storage. Either way the share of the dataset's bytes resident in the cache just before the
run starts is measured (``mincore``) and recorded with the run.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from workbench.api import Dataset
from workbench.errors import WorkbenchError
from workbench.jobs.base import Job
from workbench.runner.stats import RunStats

Cache = Literal["warm", "cold"]
CACHES: tuple[Cache, ...] = ("warm", "cold")


class PageCache(Protocol):
    """The dataset's files where the runs read them: drop them from the cache, measure what is resident."""

    def drop(self) -> None: ...

    def resident(self) -> float: ...


class LocalFiles:
    """The dataset's shard and index files on this machine (local and docker backends)."""

    def __init__(self, dataset: Dataset):
        root = dataset.directory
        self.paths = [root / s.path for s in dataset.manifest.shards]
        self.paths += [root / s.index_path for s in dataset.manifest.shards if (root / s.index_path).exists()]

    def drop(self) -> None:
        from workbench.util import pagecache

        try:
            pagecache.drop(self.paths)
        except pagecache.CacheControlUnavailable as exc:
            raise WorkbenchError(f"--cold cannot drop the page cache here: {exc}") from None

    def resident(self) -> float:
        from workbench.util import pagecache

        try:
            return pagecache.resident_fraction(self.paths)
        except OSError:  # no mincore here: the state is unknown, not wrong
            return float("nan")


@dataclass
class Measured:
    """One timed run and the cache state it started from."""

    stats: RunStats
    cache: Cache
    resident: float  # share of the dataset's bytes in the page cache at the start (NaN: unknown)

    def record(self, **labels: Any) -> dict[str, Any]:
        """The run as a JSON record: labels, cache state, then the run's stats."""
        return {**labels, "cache": self.cache, "resident": None if self.resident != self.resident else self.resident,
                **self.stats.to_dict()}


def make_job(kind: str, query: str, **options: Any) -> Job:
    """The job a benchmark runs: grep PATTERN, substructure SMARTS, or similar SMILES."""
    from workbench.jobs import job_class

    if kind == "grep":
        return job_class("grep")(pattern=query, **options)
    if kind == "substructure":
        return job_class("substructure")(query=query, **options)
    if kind == "similar":
        return job_class("similar")(smiles=query, **options)
    raise WorkbenchError(f"cannot benchmark job {kind!r} (choose grep, substructure or similar)")


def timed_run(dataset: Dataset, job: Job, **run_options: Any) -> RunStats:
    run = dataset.run(job, progress=False, **run_options)
    for _ in run:
        pass
    return run.stats


def repeated_runs(dataset: Dataset, job: Job, repeat: int, on_run: Callable[[str, int, RunStats], None] | None = None,
                  caches: Sequence[Cache] = ("warm",), files: PageCache | None = None,
                  **run_options: Any) -> list[Measured]:
    """One untimed warm-up (page cache, clusters, containers), then ``repeat`` timed runs per cache
    state in ``caches`` (``files``: where to drop and measure; default the dataset's local files)."""
    files = files or LocalFiles(dataset)
    timed_run(dataset, job, **run_options)
    runs = []
    for cache in caches:
        for i in range(repeat):
            if cache == "cold":
                files.drop()
            resident = files.resident()
            runs.append(Measured(timed_run(dataset, job, **run_options), cache, resident))
            if on_run:
                on_run(cache, i, runs[-1].stats)
    return runs


def medians(runs: list[Measured]) -> tuple[float, float, int, float]:
    """Median wall seconds, median CPU seconds, hits of the last run, median resident share."""
    resident = [m.resident for m in runs if m.resident == m.resident]
    return (statistics.median(m.stats.seconds for m in runs), statistics.median(m.stats.cpu_seconds for m in runs),
            runs[-1].stats.hits, statistics.median(resident) if resident else float("nan"))


def check_cold_possible() -> None:
    """A clear error before any run when ``--cold`` cannot work on this platform."""
    from workbench.util.pagecache import can_drop

    why = can_drop()
    if why:
        raise WorkbenchError(f"--cold cannot drop the page cache here: {why}")
