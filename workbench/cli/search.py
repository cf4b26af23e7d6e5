"""CLI commands: ``grep`` and ``run`` (any command per shard)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from workbench.cli import app
from workbench.cli.common import CountOpt, DatasetOpt, RunOptions, with_run_options


@app.command(rich_help_panel="Search")
@with_run_options
def grep(
    pattern: Annotated[str, typer.Argument(help="The pattern, passed to the tool as one argument (-e).")],
    dataset: DatasetOpt,
    run: RunOptions,
    fixed: Annotated[bool, typer.Option("--fixed-strings", "-F", help="PATTERN is a literal string.")] = False,
    extended: Annotated[bool, typer.Option("--extended-regexp", "-E", help="PATTERN is an extended regex.")] = False,
    ignore_case: Annotated[bool, typer.Option("--ignore-case", "-i")] = False,
    count: CountOpt = False,
    engine: Annotated[str, typer.Option(
        "--engine", help="auto (GNU grep; ripgrep for -F on ASCII shards), gnu, ripgrep or busybox.")] = "auto",
) -> None:
    """Print the CID<TAB>SMILES lines matching PATTERN, shard by shard, with the real grep.

    Exit status like grep: 0 lines found, 1 none, 2 error.
    """
    from workbench.jobs.grep import GrepJob

    job = GrepJob(pattern=pattern, fixed=fixed, extended=extended, ignore_case=ignore_case, engine=engine,
                  count_only=count)
    raise typer.Exit(run.emit(job, dataset, count=count))


@app.command("run", rich_help_panel="Search")
@with_run_options
def run_command_job(
    dataset: DatasetOpt,
    run: RunOptions,
    command: Annotated[Optional[list[str]], typer.Argument(help="Program and arguments; {shard} is the shard path.")] = None,
    job_file: Annotated[Optional[str], typer.Option(
        "--job", help="A TOML job definition: a file, or one shipped with workbench by name (e.g. element-census).")] = None,
    reduce: Annotated[Optional[str], typer.Option("--reduce", help="cat (default), sort, sum or sum-by-key.")] = None,
) -> None:
    """Run any command on every shard (map), then combine the outputs (reduce).

    Example: workbench run --dataset DIR --reduce sum -- wc -l {shard}
    """
    from workbench.errors import WorkbenchError
    from workbench.jobs.command import CommandJob, load_definition

    if bool(command) == bool(job_file):
        raise WorkbenchError("give either a command (after --) or --job FILE")
    job = load_definition(job_file) if job_file else CommandJob(argv=list(command or []))
    if reduce:
        job = CommandJob(argv=job.argv, reduce=reduce)
    raise typer.Exit(run.emit(job, dataset))
