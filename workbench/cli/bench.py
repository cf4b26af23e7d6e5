"""CLI commands: ``bench scaling`` (and ``bench images``, registered by the containers module)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from workbench.cli import app
from workbench.cli.common import BackendOpt, ClusterOpt, DatasetOpt, DockerHostOpt, SchedulerOpt, backend_options
from workbench.errors import WorkbenchError

bench_app = typer.Typer(help="Benchmarks: scaling with workers, container images.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

JobOpt = Annotated[str, typer.Option("--job", help="grep, substructure or similar.")]
QueryOpt = Annotated[str, typer.Option("--query", "-q", help="Pattern (grep), SMARTS (substructure) or SMILES (similar).")]
RepeatOpt = Annotated[int, typer.Option("--repeat", min=1, help="Timed runs per point (after one warm-up).")]
JsonOpt = Annotated[Optional[Path], typer.Option("--json", help="Write every raw run as JSON.")]
PlotOpt = Annotated[Optional[Path], typer.Option("--plot", help="Draw the result (PNG).")]


def parse_counts(text: str) -> list[int]:
    """'1,2,4' → [1, 2, 4]."""
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise WorkbenchError(f"--workers must be a comma-separated list of integers, not {text!r}") from None
    if not counts or min(counts) < 1:
        raise WorkbenchError(f"--workers must list positive integers, not {text!r}")
    return counts


@bench_app.command("scaling")
def bench_scaling(
    dataset: DatasetOpt,
    query: QueryOpt,
    job: JobOpt = "grep",
    workers: Annotated[str, typer.Option("--workers", "-w", help="Worker counts, e.g. 1,2,4.")] = "1,2",
    repeat: RepeatOpt = 3,
    fixed: Annotated[bool, typer.Option("--fixed-strings", "-F", help="grep: PATTERN is a literal.")] = False,
    extended: Annotated[bool, typer.Option("--extended-regexp", "-E", help="grep: extended regex.")] = False,
    backend: BackendOpt = "local",
    scheduler: SchedulerOpt = None,
    cluster: ClusterOpt = None,
    docker_host: DockerHostOpt = None,
    json_out: JsonOpt = None,
    plot_out: PlotOpt = None,
) -> None:
    """How throughput scales with workers: median wall, MB/s, records/s, speedup, efficiency, CPU user+sys."""
    from rich.console import Console
    from rich.table import Table

    from workbench.api import open_dataset
    from workbench.bench.scaling import make_job, plot, scaling

    ds = open_dataset(dataset)
    counts = parse_counts(workers)
    options = {"fixed": fixed, "extended": extended} if job == "grep" else {}
    the_job = make_job(job, query, **options)
    opts = backend_options(backend, None, scheduler, cluster, docker_host)
    opts.pop("backend")
    err = Console(stderr=True)
    rows, raw = scaling(ds, the_job, counts, repeat=repeat, backend=backend,
                        on_run=lambda n, i, s: err.log(f"workers={n} run {i + 1}/{repeat}: {s.seconds:.3f} s")
                        if sys.stderr.isatty() else None, **opts)
    table = Table("workers", "wall s", "MB/s", "records/s", "speedup", "effic.", "CPU s", "hits",
                  title=f"{job} {query!r} on {ds.manifest.records:,} records ({ds.manifest.bytes / 1e6:,.1f} MB), {backend}")
    for r in rows:
        table.add_row(str(r.workers), f"{r.wall_s:.3f}", f"{r.mb_per_s:,.1f}", f"{r.records_per_s:,.0f}",
                      f"{r.speedup:.2f}", f"{r.efficiency:.0%}", f"{r.cpu_s:.2f}", f"{r.hits:,}")
    Console().print(table)
    save_outputs(json_out, plot_out, {"dataset": str(ds.directory), "job": job, "query": query, "backend": backend},
                 rows, raw, lambda path: plot(rows, path, f"{job} {query!r}"))


def save_outputs(json_out: Path | None, plot_out: Path | None, header: dict[str, Any], rows: list[Any],
                 raw: list[dict[str, Any]], draw: Callable[[str], None]) -> None:
    """``--json``: the header, the table's rows and every raw run; ``--plot``: ``draw(path)``."""
    if json_out:
        json_out.write_text(json.dumps({**header, "rows": [r.__dict__ for r in rows], "runs": raw}, indent=1) + "\n")
    if plot_out:
        draw(str(plot_out))
