"""``workbench bench scaling``: throughput against worker count, the core experiment of the field.

For each worker count: one untimed warm-up run (page cache warm, cluster started), then
``repeat`` timed runs. Rows report the median wall time, MB/s, records/s, speedup and parallel
efficiency against the smallest worker count, and CPU user+sys seconds.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.api import Dataset
from workbench.jobs.base import Job
from workbench.runner.stats import RunStats


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


def make_job(kind: str, query: str, **options: Any) -> Job:
    """The job a benchmark runs: grep PATTERN, substructure SMARTS, or similar SMILES."""
    from workbench.jobs import job_class

    if kind == "grep":
        return job_class("grep")(pattern=query, **options)
    if kind == "substructure":
        return job_class("substructure")(query=query, **options)
    if kind == "similar":
        return job_class("similar")(smiles=query, **options)
    from workbench.errors import WorkbenchError

    raise WorkbenchError(f"cannot benchmark job {kind!r} (choose grep, substructure or similar)")


def timed_run(dataset: Dataset, job: Job, **run_options: Any) -> RunStats:
    run = dataset.run(job, **run_options)
    for _ in run:
        pass
    return run.stats


def repeated_runs(dataset: Dataset, job: Job, repeat: int, on_run: Callable[[int, RunStats], None] | None = None,
                  **run_options: Any) -> list[RunStats]:
    """The measurement every benchmark makes: one untimed warm-up (page cache, clusters, containers),
    then ``repeat`` timed runs."""
    timed_run(dataset, job, **run_options)
    runs = []
    for i in range(repeat):
        runs.append(timed_run(dataset, job, **run_options))
        if on_run:
            on_run(i, runs[-1])
    return runs


def scaling(dataset: Dataset, job: Job, workers: Sequence[int], repeat: int = 3, backend: str = "local",
            on_run: Callable[[int, int, RunStats], None] | None = None, **backend_options: Any
            ) -> tuple[list[ScalingRow], list[dict[str, Any]]]:
    """Run the experiment; returns the table rows and every raw run."""
    raw: list[dict[str, Any]] = []
    medians: dict[int, tuple[float, float, int]] = {}
    for n in workers:
        runs = repeated_runs(dataset, job, repeat, (lambda i, s, n=n: on_run(n, i, s)) if on_run else None,
                             backend=backend, workers=n, **backend_options)
        raw += [{"workers": n, "repeat": i, **stats.to_dict()} for i, stats in enumerate(runs)]
        medians[n] = (statistics.median(s.seconds for s in runs), statistics.median(s.cpu_seconds for s in runs),
                      runs[-1].hits)
    base_n = workers[0]
    base_wall = medians[base_n][0]
    m = dataset.manifest
    rows = []
    for n in workers:
        wall, cpu, hits = medians[n]
        speedup = base_wall / wall if wall else 0.0
        rows.append(ScalingRow(n, wall, m.bytes / 1e6 / wall if wall else 0.0, m.records / wall if wall else 0.0,
                               speedup, speedup * base_n / n, cpu, hits))
    return rows, raw


def plot(rows: list[ScalingRow], path: str, title: str) -> None:
    """Speedup and MB/s against workers, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    xs = [r.workers for r in rows]
    left.plot(xs, [r.speedup for r in rows], "o-", label="measured")
    left.plot(xs, [x / xs[0] for x in xs], "--", color="grey", label="ideal")
    left.set(xlabel="workers", ylabel="speedup", title="speedup")
    left.legend()
    right.plot(xs, [r.mb_per_s for r in rows], "o-")
    right.set(xlabel="workers", ylabel="MB/s", title="throughput")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
