"""CLI commands: ``index``, ``substructure``, ``similar`` (RDKit chemistry on a dataset)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from workbench.backends.retry import DEFAULT_RETRIES
from workbench.cli import app
from workbench.cli.common import (
    BackendOpt,
    ClusterOpt,
    CountOpt,
    DatasetOpt,
    DockerHostOpt,
    ImageOpt,
    KeepGoingOpt,
    PlatformOpt,
    RetriesOpt,
    RunOptions,
    SchedulerOpt,
    ShardTimeoutOpt,
    StatsJsonOpt,
    StatsOpt,
    WorkersOpt,
    backend_options,
    failure_options,
    with_run_options,
)


@app.command(rich_help_panel="Chemistry")
def index(
    dataset: DatasetOpt,
    force: Annotated[bool, typer.Option("--force", help="Rebuild every shard, even those up to date.")] = False,
    backend: BackendOpt = "local",
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    cluster: ClusterOpt = None,
    docker_host: DockerHostOpt = None,
    image: ImageOpt = None,
    platform: PlatformOpt = None,
    retries: RetriesOpt = DEFAULT_RETRIES,
    shard_timeout: ShardTimeoutOpt = None,
    keep_going: KeepGoingOpt = False,
    stats: StatsOpt = False,
    stats_json: StatsJsonOpt = None,
) -> None:
    """Build the chemistry index beside each shard (pickled molecules, pattern and Morgan fingerprints).

    Only shards that changed since the last build, have no index, or whose index file is damaged
    (its sha256 is checked) are rebuilt. Records RDKit cannot parse are counted and listed in
    DIR/index/invalid.tsv.
    """
    from workbench.api import open_dataset

    ds = open_dataset(dataset)
    opts = backend_options(backend, workers, scheduler, cluster, docker_host, image, platform=platform)
    report = ds.build_index(force=force, progress=sys.stderr.isatty(), health=stats_json is not None, **opts,
                            **failure_options(retries, shard_timeout, keep_going))
    print(report.summary(), file=sys.stderr)
    if report.stats is not None:
        if stats:
            print(report.stats.summary(), file=sys.stderr)
        if stats_json:
            report.stats.write_json(stats_json)
    for failure in report.failed:
        print(f"error: shard {failure.shard} failed: {failure.error}", file=sys.stderr)
    if report.failed:
        raise typer.Exit(2)


@app.command(rich_help_panel="Chemistry")
@with_run_options
def substructure(
    query: Annotated[str, typer.Argument(help="SMARTS query (a SMILES query with --smiles).")],
    dataset: DatasetOpt,
    run: RunOptions,
    smiles: Annotated[bool, typer.Option("--smiles", help="QUERY is SMILES, not SMARTS.")] = False,
    count: CountOpt = False,
    limit: Annotated[Optional[int], typer.Option(
        "--limit", min=1, help="At most N results: the N lowest CIDs that match.")] = None,
) -> None:
    """Print CID<TAB>SMILES of every record whose molecule has a substructure match for QUERY.

    Exactly RDKit's HasSubstructMatch with default parameters; no cap on results unless --limit.
    Exit status like grep: 0 found, 1 none, 2 error.
    """
    from workbench.jobs.substructure import SubstructureJob

    job = SubstructureJob(query=query, smiles=smiles, limit=limit, count_only=count)
    raise typer.Exit(run.emit(job, dataset, count=count))


@app.command(rich_help_panel="Chemistry")
@with_run_options
def similar(
    smiles: Annotated[str, typer.Argument(help="Query molecule as SMILES.")],
    dataset: DatasetOpt,
    run: RunOptions,
    threshold: Annotated[Optional[float], typer.Option(
        "--threshold", "-t", min=0.0, max=1.0,
        help="Lowest Tanimoto similarity to report [default: 0.7, or 0 with --top].")] = None,
    top: Annotated[Optional[int], typer.Option(
        "--top", "-k", min=1, help="The K most similar (alone: the K nearest, whatever their similarity).")] = None,
) -> None:
    """Print CID<TAB>SMILES<TAB>SIMILARITY, most similar first (Morgan radius 2, 2048 bits, Tanimoto).

    Exit status: 0 found, 1 none, 2 error.
    """
    from workbench.jobs.similarity import SimilarityJob

    job = SimilarityJob(smiles=smiles, threshold=threshold, top=top)
    raise typer.Exit(run.emit(job, dataset))
