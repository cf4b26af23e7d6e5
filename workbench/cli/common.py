"""Options and plumbing shared by the commands that run a job (grep, substructure, similar, …)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from workbench.errors import WorkbenchError

DatasetOpt = Annotated[Path, typer.Option("--dataset", "-d", help="Dataset directory (from `workbench ingest`).")]
BackendOpt = Annotated[str, typer.Option("--backend", "-b", help="Where shard tasks run: local, dask or docker.")]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", "-w", min=1, help="Concurrent shard tasks (default: one per core).")]
SchedulerOpt = Annotated[Optional[str], typer.Option("--scheduler", help="Existing Dask scheduler, tcp://HOST:PORT (--backend dask).")]
ClusterOpt = Annotated[Optional[Path], typer.Option("--cluster", help="Cluster file (TOML) for multi-node runs.")]
DockerHostOpt = Annotated[Optional[str], typer.Option("--docker-host", help="Docker engine: unix://, tcp:// or ssh:// (--backend docker).")]
ImageOpt = Annotated[Optional[str], typer.Option("--image", help="Worker image to run (--backend docker).")]
OutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o", help="Also write results to FILE: .tsv, .jsonl or .parquet.")]
CountOpt = Annotated[bool, typer.Option("--count", "-c", help="Print only the total number of matches.")]
StatsOpt = Annotated[bool, typer.Option("--stats", help="Print a run summary to stderr.")]
StatsJsonOpt = Annotated[Optional[Path], typer.Option("--stats-json", help="Write totals and per-shard stats as JSON.")]


def backend_options(backend: str, workers: int | None = None, scheduler: str | None = None,
                    cluster: Path | None = None, docker_host: str | None = None,
                    image: str | None = None) -> dict[str, Any]:
    """Check that each option suits the chosen backend; return the backend's keyword options."""
    if scheduler and backend != "dask":
        raise WorkbenchError("--scheduler needs --backend dask")
    if (docker_host or image) and backend != "docker":
        raise WorkbenchError("--docker-host and --image need --backend docker")
    if cluster and backend not in ("dask", "docker"):
        raise WorkbenchError("--cluster needs --backend dask or --backend docker")
    opts: dict[str, Any] = {"workers": workers, "scheduler": scheduler,
                            "cluster": str(cluster) if cluster else None,
                            "docker_host": docker_host, "image": image}
    return {"backend": backend, **{k: v for k, v in opts.items() if v is not None}}


def run_and_emit(job: Any, dataset: Path, run_options: dict[str, Any], *, output: Path | None = None,
                 count: bool = False, stats: bool = False, stats_json: Path | None = None) -> int:
    """Run ``job``, write result lines to stdout as shards finish, return grep-style status."""
    from workbench.dataset.dataset import open_dataset
    from workbench.output import ResultWriter

    ds = open_dataset(dataset)
    writer = ResultWriter(output, job.schema()) if output else None
    out = sys.stdout.buffer
    run = ds.run(job, progress=sys.stderr.isatty(), **run_options)
    held: list[bytes] = []
    ordered = job.finish_payloads([]) is not None  # the job sorts globally: hold lines to the end
    try:
        for result in run:
            if count:
                continue
            if ordered:
                held.append(result.payload)
                continue
            if result.payload:
                out.write(result.payload)
                out.flush()
                if writer:
                    writer.write(result.payload)
        if ordered and not count:
            for payload in job.finish_payloads(held) or []:
                out.write(payload)
                if writer:
                    writer.write(payload)
            out.flush()
        if count:
            out.write(f"{run.stats.hits}\n".encode())
            out.flush()
    finally:
        if writer:
            writer.close()
        if stats:
            print(run.stats.summary(), file=sys.stderr)
        if stats_json:
            run.stats.write_json(stats_json)
    return 0 if run.stats.hits else 1
