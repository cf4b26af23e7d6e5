"""CLI commands: ``ingest``, ``info``, ``verify``, ``datasets list|fetch``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from workbench.cli import app
from workbench.cli.common import DatasetOpt

datasets_app = typer.Typer(help="Dataset recipes: real molecules to try workbench on.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets", rich_help_panel="Data")


def _summary(ds: "object") -> str:
    info = ds.info()  # type: ignore[attr-defined]
    text = (f"{info['records']:,} records in {info['shards']} shards ({info['bytes'] / 1e6:,.1f} MB), "
            f"{info['rejected']:,} rejected")
    if info["rejected"]:
        text += f" (see {info['dataset']}/rejects.tsv)"
    return text


@app.command(rich_help_panel="Data")
def ingest(
    sources: Annotated[list[str], typer.Argument(help="Input files (plain or .gz), or - for stdin.")],
    dataset: DatasetOpt,
    shard_size: Annotated[str, typer.Option("--shard-size", help="Largest shard, e.g. 64MB, 512kB.")] = "64MB",
    fmt: Annotated[str, typer.Option("--format", help="auto, cid-smiles, smi or sdf.")] = "auto",
    smiles_field: Annotated[Optional[str], typer.Option("--smiles-field", help="SD field holding SMILES.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing dataset directory.")] = False,
) -> None:
    """Shard SOURCES into checksummed CID<TAB>SMILES shards in --dataset DIR."""
    from workbench.api import ingest as run_ingest

    ds = run_ingest(sources, dataset, shard_size=shard_size, format=fmt, force=force, smiles_field=smiles_field)
    print(f"ingested {_summary(ds)} into {ds.directory}", file=sys.stderr)
    kept = ds.info()["index"]
    if kept != "none":
        print(f"chemistry index kept for unchanged shards: {kept}"
              + ("" if kept == "complete" else "; `workbench index` builds the rest"), file=sys.stderr)


@app.command(rich_help_panel="Data")
def info(
    dataset: DatasetOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Summarise a dataset: records, rejected, shards, bytes, index state."""
    from workbench.api import open_dataset

    facts = open_dataset(dataset).info()
    if as_json:
        print(json.dumps(facts, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None)
    for key, value in facts.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int) else ", ".join(value) if isinstance(value, list) else str(value))
    Console().print(table)


@app.command(rich_help_panel="Data")
def verify(
    dataset: DatasetOpt,
    cluster: Annotated[Optional[Path], typer.Option("--cluster", help="Also check every node's copies (cluster file).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check the sha256 of every shard and index file, here and (--cluster) on every node holding a copy.

    Each bad file is listed on stdout (shard, node, file, problem). Exit status 0 when everything is
    intact, 1 when a file is missing or differs, 2 on error.
    """
    from workbench.api import verify as run_verify

    report = run_verify(dataset, cluster)
    if as_json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        for problem in report.problems:
            print(problem.line())
        print(report.summary(), file=sys.stderr)
    raise typer.Exit(0 if report.intact else 1)


@datasets_app.command("list")
def datasets_list() -> None:
    """List the dataset recipes."""
    from rich.console import Console
    from rich.table import Table

    from workbench.storage.recipes import RECIPES

    table = Table("name", "records", "source")
    for recipe in RECIPES.values():
        table.add_row(recipe.name, recipe.size, recipe.description)
    Console().print(table)


@datasets_app.command("fetch")
def datasets_fetch(
    name: Annotated[str, typer.Argument(help="Recipe name (see `workbench datasets list`).")],
    dataset: DatasetOpt,
    shard_size: Annotated[str, typer.Option("--shard-size")] = "64MB",
    force: Annotated[bool, typer.Option("--force")] = False,
) -> None:
    """Fetch a recipe's molecules and ingest them into --dataset DIR."""
    from workbench.api import fetch_dataset

    ds = fetch_dataset(name, dataset, shard_size=shard_size, force=force)
    print(f"{name}: ingested {_summary(ds)} into {ds.directory}", file=sys.stderr)


__all__ = ["datasets_app"]
