"""Options and plumbing shared by the commands that run a job (grep, substructure, similar, …)."""

from __future__ import annotations

import functools
import inspect
import os
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from workbench.errors import WorkbenchError

DatasetOpt = Annotated[Path, typer.Option("--dataset", "-d", help="Dataset directory (from `workbench ingest`).")]
BackendOpt = Annotated[str, typer.Option("--backend", "-b", help="Where shard tasks run: local, dask or docker.")]
WorkersOpt = Annotated[Optional[int], typer.Option("--workers", "-w", min=1, help="Concurrent shard tasks (default: one per core).")]
SchedulerOpt = Annotated[Optional[str], typer.Option("--scheduler", help="Existing Dask scheduler, tcp:// or tls://HOST:PORT.")]
TlsCaOpt = Annotated[Optional[Path], typer.Option("--tls-ca-file", help="CA certificate of a tls:// scheduler's cluster (PEM).")]
TlsCertOpt = Annotated[Optional[Path], typer.Option("--tls-cert", help="This client's certificate for a tls:// scheduler (PEM).")]
TlsKeyOpt = Annotated[Optional[Path], typer.Option("--tls-key", help="This client's private key for a tls:// scheduler (PEM).")]
ClusterOpt = Annotated[Optional[Path], typer.Option("--cluster", help="Cluster file (TOML) for multi-node runs.")]
DockerHostOpt = Annotated[Optional[str], typer.Option("--docker-host", help="Docker engine: unix://, tcp:// or ssh:// (--backend docker).")]
InsecureEngineOpt = Annotated[bool, typer.Option("--insecure-engine",
                                                  help="Allow a plain tcp:// Docker engine on another machine (root there).")]
ImageOpt = Annotated[Optional[str], typer.Option("--image", help="Worker image to run (--backend docker).")]
OutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o", help="Also write results to FILE: .tsv, .jsonl or .parquet.")]
CountOpt = Annotated[bool, typer.Option("--count", "-c", help="Print only the total number of matches.")]
StatsOpt = Annotated[bool, typer.Option("--stats", help="Print a run summary to stderr.")]
StatsJsonOpt = Annotated[Optional[Path], typer.Option("--stats-json", help="Write totals and per-shard stats as JSON.")]


def backend_options(backend: str, workers: int | None = None, scheduler: str | None = None,
                    cluster: Path | None = None, docker_host: str | None = None,
                    image: str | None = None, tls: tuple[Path | None, Path | None, Path | None] = (None, None, None),
                    insecure_engine: bool = False) -> dict[str, Any]:
    """Check that each option suits the chosen backend; return the backend's keyword options."""
    if scheduler and backend != "dask":
        raise WorkbenchError("--scheduler needs --backend dask")
    if any(tls) and not scheduler:
        raise WorkbenchError("--tls-ca-file, --tls-cert and --tls-key need --backend dask --scheduler tls://HOST:PORT")
    if insecure_engine and backend != "docker":
        raise WorkbenchError("--insecure-engine needs --backend docker")
    if (docker_host or image) and backend != "docker":
        raise WorkbenchError("--docker-host and --image need --backend docker")
    if cluster and backend not in ("dask", "docker"):
        raise WorkbenchError("--cluster needs --backend dask or --backend docker")
    opts: dict[str, Any] = {"workers": workers, "scheduler": scheduler,
                            "cluster": str(cluster) if cluster else None,
                            "docker_host": docker_host, "image": image,
                            **{k: str(v) for k, v in zip(("tls_ca_file", "tls_cert", "tls_key"), tls) if v},
                            "insecure_engine": insecure_engine or None}
    return {"backend": backend, **{k: v for k, v in opts.items() if v is not None}}


def run_and_emit(job: Any, dataset: Path, run_options: dict[str, Any], *, output: Path | None = None,
                 count: bool = False, stats: bool = False, stats_json: Path | None = None) -> int:
    """Run ``job``, write its result lines (``Run.payloads``) to stdout, return grep-style status."""
    from workbench.api import open_dataset
    from workbench.storage.results import ResultWriter

    ds = open_dataset(dataset)
    writer = ResultWriter(output, job.schema()) if output else None
    out = sys.stdout.buffer
    run = ds.run(job, progress=sys.stderr.isatty(), **run_options)
    try:
        for payload in run.payloads():
            if count or not payload:
                continue
            out.write(payload)
            out.flush()
            if writer:
                writer.write(payload)
        if count:
            out.write(f"{run.count}\n".encode())
            out.flush()
    except BrokenPipeError:  # `| head`: the reader has what it wanted; stop the run, exit 0 as documented
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        if writer:
            writer.close()
        if stats:
            print(run.stats.summary(), file=sys.stderr)
        if stats_json:
            run.stats.write_json(stats_json)
    return 0 if run.count else 1


@dataclass
class RunOptions:
    """The options every job command shares: where it runs and where results go."""

    backend: str = "local"
    workers: int | None = None
    scheduler: str | None = None
    cluster: Path | None = None
    docker_host: str | None = None
    image: str | None = None
    tls_ca_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure_engine: bool = False
    output: Path | None = None
    stats: bool = False
    stats_json: Path | None = None

    def backend_options(self) -> dict[str, Any]:
        return backend_options(self.backend, self.workers, self.scheduler, self.cluster, self.docker_host, self.image,
                               (self.tls_ca_file, self.tls_cert, self.tls_key), self.insecure_engine)

    def emit(self, job: Any, dataset: Path, count: bool = False) -> int:
        """Run ``job`` and stream its lines (``run_and_emit``) with these options."""
        return run_and_emit(job, dataset, self.backend_options(), output=self.output, count=count,
                            stats=self.stats, stats_json=self.stats_json)


_SHARED = [("backend", BackendOpt, "local"), ("workers", WorkersOpt, None), ("scheduler", SchedulerOpt, None),
           ("cluster", ClusterOpt, None), ("docker_host", DockerHostOpt, None), ("image", ImageOpt, None),
           ("tls_ca_file", TlsCaOpt, None), ("tls_cert", TlsCertOpt, None), ("tls_key", TlsKeyOpt, None),
           ("insecure_engine", InsecureEngineOpt, False),
           ("output", OutputOpt, None), ("stats", StatsOpt, False), ("stats_json", StatsJsonOpt, None)]


def with_run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Give a typer command the shared options; they reach it bundled as ``run: RunOptions``."""
    signature = inspect.signature(command)
    hints = typing.get_type_hints(command, include_extras=True)  # resolve postponed annotations here
    own = [p.replace(annotation=hints.get(name, p.annotation))
           for name, p in signature.parameters.items() if name != "run"]
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
              for name, annotation, default in _SHARED]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        run = RunOptions(**{name: kwargs.pop(name) for name, _, _ in _SHARED})
        return command(*args, run=run, **kwargs)

    wrapper.__annotations__ = {**{p.name: p.annotation for p in own}, **{n: a for n, a, _ in _SHARED}}
    wrapper.__signature__ = signature.replace(parameters=own + shared)  # type: ignore[attr-defined]
    del wrapper.__wrapped__  # typer must read the new signature, not the wrapped one
    return wrapper
