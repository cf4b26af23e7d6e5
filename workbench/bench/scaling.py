"""``workbench bench scaling``: throughput against worker count, the core experiment of the field.

For each worker count: one untimed warm-up run (page cache warm, cluster started), then
``repeat`` timed runs per cache state (``warm``; with ``--cold`` also ``cold``, each repeat
starting with the dataset's pages dropped from the page cache). Rows report the median wall
time, MB/s, records/s, speedup and parallel efficiency against the smallest worker count (of
the same cache state), CPU user+sys seconds and the share of the dataset resident in the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.api import Dataset
from workbench.bench.measure import CACHES, Cache, make_job, medians, repeated_runs
from workbench.jobs.base import Job
from workbench.runner.stats import RunStats

__all__ = ["ScalingRow", "figure", "make_job", "plot", "scaling"]


@dataclass
class ScalingRow:
    workers: int
    wall_s: float
    mb_per_s: float
    records_per_s: float
    speedup: float
    efficiency: float
    cpu_s: float
    hits: int
    cache: str = "warm"
    resident: float | None = None  # median share of the dataset in the page cache when runs started


def scaling(dataset: Dataset, job: Job, workers: Sequence[int], repeat: int = 3, backend: str = "local",
            on_run: Callable[[str, int, RunStats], None] | None = None, cold: bool = False,
            **backend_options: Any) -> tuple[list[ScalingRow], list[dict[str, Any]]]:
    """Run the experiment; returns the table rows (per worker count: warm, then cold) and every raw run."""
    caches: tuple[Cache, ...] = CACHES if cold else ("warm",)
    if cold:
        from workbench.bench.measure import check_cold_possible

        check_cold_possible()
    raw: list[dict[str, Any]] = []
    measured: dict[tuple[int, str], tuple[float, float, int, float]] = {}
    for n in workers:
        runs = repeated_runs(dataset, job, repeat,
                             (lambda cache, i, s, n=n: on_run(f"workers={n} {cache}", i, s)) if on_run else None,
                             caches=caches, backend=backend, workers=n, **backend_options)
        raw += [m.record(workers=n, repeat=i % repeat) for i, m in enumerate(runs)]
        for cache in caches:
            measured[n, cache] = medians([m for m in runs if m.cache == cache])
    m = dataset.manifest
    rows = []
    for n in workers:
        for cache in caches:
            wall, cpu, hits, resident = measured[n, cache]
            base_wall = measured[workers[0], cache][0]
            speedup = base_wall / wall if wall else 0.0
            rows.append(ScalingRow(n, wall, m.bytes / 1e6 / wall if wall else 0.0, m.records / wall if wall else 0.0,
                                   speedup, speedup * workers[0] / n, cpu, hits, cache,
                                   None if resident != resident else resident))
    return rows, raw


def figure(rows: list[ScalingRow | dict[str, Any]], title: str) -> Any:
    """Speedup and MB/s against workers, one line per cache state (warm, cold)."""
    from workbench.bench.charts import line_chart, new_figure

    rows_d = [r if isinstance(r, dict) else r.__dict__ for r in rows]
    fig, (left, right) = new_figure(2)
    caches = list(dict.fromkeys(r.get("cache", "warm") for r in rows_d))
    xs = sorted({r["workers"] for r in rows_d})

    def series(key: str) -> dict[str, list[float]]:
        by = {(r["workers"], r.get("cache", "warm")): r[key] for r in rows_d}
        return {cache: [by[x, cache] for x in xs] for cache in caches}

    line_chart(left, xs, series("speedup"), xlabel="workers", ylabel="speedup", title="speedup",
               ideal=[x / xs[0] for x in xs])
    line_chart(right, xs, series("mb_per_s"), xlabel="workers", ylabel="MB/s", title="throughput")
    fig.suptitle(title)
    return fig


def plot(rows: list[ScalingRow], path: str, title: str) -> None:
    """Speedup and MB/s against workers, side by side, to a PNG (or SVG) file."""
    from workbench.bench.charts import save

    save(figure(list(rows), title), path)
