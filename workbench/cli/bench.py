"""CLI commands: ``bench scaling``, ``bench report`` (and ``bench images``, registered by the containers module)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from workbench.cli import app, work_order
from workbench.cli.common import BackendOpt, DatasetOpt, DockerHostOpt, SchedulerOpt, backend_options
from workbench.errors import WorkbenchError

bench_app = typer.Typer(help="Benchmarks: scaling with workers and nodes, warm and cold cache, container images, HTML reports.",
                        no_args_is_help=True, cls=work_order(["scaling", "images", "report"]))
app.add_typer(bench_app, name="bench", rich_help_panel="Benchmarks")

JobOpt = Annotated[str, typer.Option("--job", help="grep, substructure or similar.")]
QueryOpt = Annotated[str, typer.Option("--query", "-q", help="Pattern (grep), SMARTS (substructure) or SMILES (similar).")]
RepeatOpt = Annotated[int, typer.Option("--repeat", min=1, help="Timed runs per point (after one warm-up).")]
JsonOpt = Annotated[Optional[Path], typer.Option("--json", help="Write the machine, the table's rows and every raw run as JSON.")]
PlotOpt = Annotated[Optional[Path], typer.Option("--plot", help="Draw the result (PNG, or SVG by suffix).")]


def parse_counts(text: str, option: str = "--workers") -> list[int]:
    """'1,2,4' → [1, 2, 4]."""
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise WorkbenchError(f"{option} must be a comma-separated list of integers, not {text!r}") from None
    if not counts or min(counts) < 1:
        raise WorkbenchError(f"{option} must list positive integers, not {text!r}")
    return counts


def _log(repeat: int) -> Callable[[str, int, Any], None] | None:
    """Each timed run on stderr (a terminal only)."""
    if not sys.stderr.isatty():
        return None
    from rich.console import Console

    err = Console(stderr=True)
    return lambda label, i, s: err.log(f"{label} run {i + 1}/{repeat}: {s.seconds:.3f} s")


def _console() -> Any:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)  # piped: keep every column


@bench_app.command("scaling")
def bench_scaling(
    dataset: DatasetOpt,
    query: QueryOpt,
    job: JobOpt = "grep",
    workers: Annotated[Optional[str], typer.Option("--workers", "-w", help="Worker counts (default 1,2).")] = None,
    repeat: RepeatOpt = 3,
    cold: Annotated[bool, typer.Option("--cold", help="Also time every point with the dataset dropped from the page cache.")] = False,
    fixed: Annotated[bool, typer.Option("--fixed-strings", "-F", help="grep: PATTERN is a literal.")] = False,
    extended: Annotated[bool, typer.Option("--extended-regexp", "-E", help="grep: extended regex.")] = False,
    backend: BackendOpt = "local",
    scheduler: SchedulerOpt = None,
    cluster: Annotated[Optional[Path], typer.Option(
        "--cluster", help="Cluster file: scale over its nodes (--nodes) on its Dask workers instead of --workers.")] = None,
    nodes: Annotated[Optional[str], typer.Option("--nodes", "-n", help="Node counts with --cluster, e.g. 1,2,3 (default: 1..N).")] = None,
    storage: Annotated[str, typer.Option(
        "--storage", help="With --cluster: local, shared or local,shared (auto: shared too when every node has shared_dir).")] = "auto",
    docker_host: DockerHostOpt = None,
    json_out: JsonOpt = None,
    plot_out: PlotOpt = None,
) -> None:
    """How throughput scales with workers (or nodes): median wall, MB/s, speedup, efficiency; warm and cold cache."""
    from workbench.api import open_dataset
    from workbench.bench.measure import make_job

    ds = open_dataset(dataset)
    options = {"fixed": fixed, "extended": extended} if job == "grep" else {}
    the_job = make_job(job, query, **options)
    from rich.markup import escape

    title = escape(f"{job} {query!r} on {ds.manifest.records:,} records ({ds.manifest.bytes / 1e6:,.1f} MB)")
    header = {"dataset": str(ds.directory), "job": job, "query": query}
    if cluster is not None:
        return _node_scaling(ds, the_job, cluster, nodes, storage, repeat, cold, backend, workers, title, header,
                             json_out, plot_out)
    if nodes is not None:
        raise WorkbenchError("--nodes needs --cluster FILE")
    from workbench.bench.scaling import plot, scaling

    counts = parse_counts(workers or "1,2")
    opts = backend_options(backend, None, scheduler, None, docker_host)
    opts.pop("backend")
    rows, raw = scaling(ds, the_job, counts, repeat=repeat, backend=backend, cold=cold, on_run=_log(repeat), **opts)
    table = _scaling_table(rows, cold, f"{title}, {backend}")
    _console().print(table)
    save_outputs(json_out, plot_out, "scaling", {**header, "backend": backend, "cold": cold}, rows, raw,
                 lambda path: plot(rows, path, f"{job} {query!r}"))


def _scaling_table(rows: list[Any], cold: bool, title: str) -> Any:
    from rich.table import Table

    if not cold:
        table = Table("workers", "wall s", "MB/s", "records/s", "speedup", "effic.", "CPU s", "hits", title=title)
        for r in rows:
            table.add_row(str(r.workers), f"{r.wall_s:.3f}", f"{r.mb_per_s:,.1f}", f"{r.records_per_s:,.0f}",
                          f"{r.speedup:.2f}", f"{r.efficiency:.0%}", f"{r.cpu_s:.2f}", f"{r.hits:,}")
        return table
    table = Table("workers", "warm s", "warm MB/s", "cold s", "cold MB/s", "cold ÷ warm", "speedup warm",
                  "speedup cold", "cached at cold start", "hits", title=title)
    by = {(r.workers, r.cache): r for r in rows}
    for n in dict.fromkeys(r.workers for r in rows):
        w, c = by[n, "warm"], by[n, "cold"]
        table.add_row(str(n), f"{w.wall_s:.3f}", f"{w.mb_per_s:,.1f}", f"{c.wall_s:.3f}", f"{c.mb_per_s:,.1f}",
                      f"{c.wall_s / w.wall_s:.2f}" if w.wall_s else "-", f"{w.speedup:.2f}", f"{c.speedup:.2f}",
                      "-" if c.resident is None else f"{c.resident:.0%}", f"{c.hits:,}")
    return table


def _node_scaling(ds: Any, the_job: Any, cluster: Path, nodes: str | None, storage: str, repeat: int, cold: bool,
                  backend: str, workers: str | None, title: str, header: dict[str, Any], json_out: Path | None,
                  plot_out: Path | None) -> None:
    from rich.table import Table

    from workbench.bench.machine import describe_cluster
    from workbench.bench.nodes import default_storages, node_scaling, plot
    from workbench.cluster.inventory import load_cluster

    if backend not in ("local", "dask"):
        raise WorkbenchError("bench scaling --cluster runs on the cluster's Dask workers (--backend dask)")
    if workers is not None:
        raise WorkbenchError("--workers does not apply with --cluster: each node runs one worker per core; use --nodes")
    size = len(load_cluster(cluster).nodes)
    counts = parse_counts(nodes, "--nodes") if nodes else list(range(1, size + 1))
    storages = default_storages(str(cluster)) if storage == "auto" else [s.strip() for s in storage.split(",") if s.strip()]
    before = describe_cluster(str(cluster))
    rows, raw = node_scaling(ds, the_job, str(cluster), counts, storages=storages, repeat=repeat, cold=cold,
                             on_run=_log(repeat))
    table = Table("storage", "nodes", "workers", "cache", "wall s", "MB/s", "MB/s per node", "speedup", "effic.",
                  "busiest node", "hits", title=f"{title}, {cluster.name}")
    for r in rows:
        table.add_row(r.storage, str(r.nodes), str(r.workers), r.cache, f"{r.wall_s:.3f}", f"{r.mb_per_s:,.1f}",
                      f"{r.mb_per_s_node:,.1f}", f"{r.speedup:.2f}", f"{r.efficiency:.0%}", f"{r.busiest_share:.0%}",
                      f"{r.hits:,}")
    _console().print(table)
    save_outputs(json_out, plot_out, "nodes", {**header, "backend": "dask", "cluster_file": str(cluster), "cold": cold},
                 rows, raw, lambda path: plot(rows, path, title), cluster=before,
                 after=lambda doc: doc.update(health_end=describe_cluster(str(cluster), health_only=True)))


@bench_app.command("report")
def bench_report(
    runs: Annotated[list[Path], typer.Argument(help="JSON files written by `bench scaling --json` / `bench images --json`.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")],
    title: Annotated[str, typer.Option("--title", help="The report's heading.")] = "workbench benchmark report",
) -> None:
    """One self-contained HTML page: each benchmark's table and chart (inline SVG), machine, cluster, versions."""
    from workbench.bench.report import write_report

    sections = write_report(runs, output, title=title)
    print(f"wrote {output} ({sections} benchmark{'s' if sections != 1 else ''})", file=sys.stderr)


def save_outputs(json_out: Path | None, plot_out: Path | None, kind: str, header: dict[str, Any], rows: list[Any],
                 raw: list[dict[str, Any]], draw: Callable[[str], None], cluster: list[dict[str, Any]] | None = None,
                 after: Callable[[dict[str, Any]], None] | None = None) -> None:
    """``--json``: the benchmark document (``workbench.bench.machine.document``); ``--plot``: ``draw(path)``."""
    if json_out:
        from workbench.bench.machine import document

        doc = document(kind, header, rows, raw, cluster=cluster)
        if after:
            after(doc)
        json_out.write_text(json.dumps(doc, indent=1) + "\n")
    if plot_out:
        draw(str(plot_out))
