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

from workbench.backends.retry import DEFAULT_RETRIES
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
PlatformOpt = Annotated[Optional[str], typer.Option(
    "--platform", help="Run the images of linux/amd64, linux/arm64 or linux/arm/v7 (--backend docker; default: "
    "each engine's own; another one runs under qemu emulation).")]
OutputOpt = Annotated[Optional[Path], typer.Option("--output", "-o", help="Also write results to FILE: .tsv, .jsonl or .parquet.")]
CountOpt = Annotated[bool, typer.Option("--count", "-c", help="Print only the total number of matches.")]
StatsOpt = Annotated[bool, typer.Option("--stats", help="Print a run summary to stderr.")]
StatsJsonOpt = Annotated[Optional[Path], typer.Option(
    "--stats-json", help="Write totals, per-shard stats and each node's temperature at start and end as JSON.")]
RetriesOpt = Annotated[int, typer.Option("--retries", min=0, help=(
    "Run a shard again up to N times after a transient failure (killed process or container, lost worker, "
    "node or engine, timeout)."))]
ShardTimeoutOpt = Annotated[Optional[float], typer.Option("--shard-timeout", min=0.001, metavar="SECONDS", help=(
    "Kill a shard task (its process or container) running longer; it counts as a failed attempt."))]
KeepGoingOpt = Annotated[bool, typer.Option("--keep-going", help=(
    "After a shard fails for good, finish the others and print their results; then list the failed "
    "shards and exit 2."))]
ResumeOpt = Annotated[bool, typer.Option("--resume", help=(
    "With -o FILE: reuse the shards an interrupted run of the same command finished (kept in FILE.partial/)."))]
JoblogOpt = Annotated[Optional[Path], typer.Option("--joblog", help=(
    "Write one TSV row per shard: shard, node, worker, start time, seconds, attempts, outcome, hits, error."))]


def backend_options(backend: str, workers: int | None = None, scheduler: str | None = None,
                    cluster: Path | None = None, docker_host: str | None = None,
                    image: str | None = None, tls: tuple[Path | None, Path | None, Path | None] = (None, None, None),
                    insecure_engine: bool = False, platform: str | None = None) -> dict[str, Any]:
    """Check that each option suits the chosen backend; return the backend's keyword options."""
    if scheduler and backend != "dask":
        raise WorkbenchError("--scheduler needs --backend dask")
    if any(tls) and not scheduler:
        raise WorkbenchError("--tls-ca-file, --tls-cert and --tls-key need --backend dask --scheduler tls://HOST:PORT")
    if insecure_engine and backend != "docker":
        raise WorkbenchError("--insecure-engine needs --backend docker")
    if (docker_host or image or platform) and backend != "docker":
        raise WorkbenchError("--docker-host, --image and --platform need --backend docker")
    if cluster and backend not in ("dask", "docker"):
        raise WorkbenchError("--cluster needs --backend dask or --backend docker")
    opts: dict[str, Any] = {"workers": workers, "scheduler": scheduler,
                            "cluster": str(cluster) if cluster else None,
                            "docker_host": docker_host, "image": image, "platform": platform,
                            **{k: str(v) for k, v in zip(("tls_ca_file", "tls_cert", "tls_key"), tls) if v},
                            "insecure_engine": insecure_engine or None}
    return {"backend": backend, **{k: v for k, v in opts.items() if v is not None}}


def run_and_emit(job: Any, dataset: Path, run_options: dict[str, Any], *, output: Path | None = None,
                 resume: bool = False, count: bool = False, stats: bool = False, stats_json: Path | None = None,
                 joblog: Path | None = None) -> int:
    """Run ``job``, write its result lines (``Run.payloads``) to stdout, return grep-style status.

    ``output`` is written atomically by the run (with its journal, continued by ``resume``). Shards
    that failed for good in a keep-going run are listed on stderr, and the status is then 2."""
    from workbench.api import open_dataset
    from workbench.errors import JobError

    if resume and not output:
        raise WorkbenchError("--resume needs -o FILE (the finished shards are kept beside it)")
    ds = open_dataset(dataset)
    out = sys.stdout.buffer
    run = ds.run(job, progress=sys.stderr.isatty(), output=output, resume=resume, health=stats_json is not None,
                 **run_options)
    try:
        for payload in run.payloads():
            if count or not payload:
                continue
            out.write(payload)
            out.flush()
        if count:
            out.write(f"{run.count}\n".encode())
            out.flush()
    except JobError as exc:
        raise JobError(f"{exc}{_kept(run, output)}") from None
    except BrokenPipeError:  # `| head`: the reader has what it wanted; stop the run, exit 0 as documented
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        if stats:
            print(run.stats.summary(), file=sys.stderr)
        if stats_json:
            run.stats.write_json(stats_json)
        if joblog:
            run.stats.write_joblog(joblog)
    if run.failed:
        for failure in run.failed:
            print(f"error: shard {failure.shard} failed: {failure.error}", file=sys.stderr)
        print(f"error: {len(run.failed)} of {run.stats.shards_total} shards failed{_kept(run, output)}",
              file=sys.stderr)
        return 2
    return 0 if run.count else 1


def _kept(run: Any, output: Path | None) -> str:
    """Where an unfinished ``-o`` run keeps its finished shards, as a hint to resume."""
    kept = len(run.stats.shards)
    if not output or not kept:
        return ""
    return f"; {output} not written, {kept} finished shards kept in {output}.partial: re-run with --resume"


@dataclass
class RunOptions:
    """The options every job command shares: where it runs, how failures are handled, where results go."""

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
    platform: str | None = None
    retries: int = DEFAULT_RETRIES
    shard_timeout: float | None = None
    keep_going: bool = False
    output: Path | None = None
    resume: bool = False
    stats: bool = False
    stats_json: Path | None = None
    joblog: Path | None = None

    def backend_options(self) -> dict[str, Any]:
        return backend_options(self.backend, self.workers, self.scheduler, self.cluster, self.docker_host, self.image,
                               (self.tls_ca_file, self.tls_cert, self.tls_key), self.insecure_engine, self.platform)

    def run_options(self) -> dict[str, Any]:
        """``Dataset.run`` keyword options: the backend's and the retry policy's."""
        return {**self.backend_options(), **failure_options(self.retries, self.shard_timeout, self.keep_going)}

    def emit(self, job: Any, dataset: Path, count: bool = False) -> int:
        """Run ``job`` and stream its lines (``run_and_emit``) with these options."""
        return run_and_emit(job, dataset, self.run_options(), output=self.output, resume=self.resume, count=count,
                            stats=self.stats, stats_json=self.stats_json, joblog=self.joblog)


def failure_options(retries: int, shard_timeout: float | None, keep_going: bool) -> dict[str, Any]:
    return {"retries": retries, "shard_timeout": shard_timeout, "keep_going": keep_going}


_SHARED = [("backend", BackendOpt, "local"), ("workers", WorkersOpt, None), ("scheduler", SchedulerOpt, None),
           ("cluster", ClusterOpt, None), ("docker_host", DockerHostOpt, None), ("image", ImageOpt, None),
           ("tls_ca_file", TlsCaOpt, None), ("tls_cert", TlsCertOpt, None), ("tls_key", TlsKeyOpt, None),
           ("insecure_engine", InsecureEngineOpt, False), ("platform", PlatformOpt, None),
           ("retries", RetriesOpt, DEFAULT_RETRIES), ("shard_timeout", ShardTimeoutOpt, None),
           ("keep_going", KeepGoingOpt, False), ("output", OutputOpt, None), ("resume", ResumeOpt, False),
           ("stats", StatsOpt, False), ("stats_json", StatsJsonOpt, None), ("joblog", JoblogOpt, None)]


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
