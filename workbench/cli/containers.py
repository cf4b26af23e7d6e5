"""CLI commands: ``images build|list|bootstrap`` and ``bench images``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from workbench.cli import app
from workbench.cli.bench import JobOpt, JsonOpt, PlotOpt, QueryOpt, RepeatOpt, bench_app, save_outputs
from workbench.cli.common import DatasetOpt, DockerHostOpt, InsecureEngineOpt, WorkersOpt

if TYPE_CHECKING:
    from rich.console import Console

    from workbench.containers.imagemap import ImageSpec

images_app = typer.Typer(help="Worker images: build, list, bootstrap base images without a registry.",
                         no_args_is_help=True)
app.add_typer(images_app, name="images", rich_help_panel="Containers")

OnlyOpt = Annotated[Optional[list[str]], typer.Option("--only", help="Only this image (repeatable).")]
ImagePlatformOpt = Annotated[Optional[str], typer.Option(
    "--platform", help="linux/amd64, linux/arm64 or linux/arm/v7 (default: the engine's; another one runs under qemu).")]


def _console() -> "Console":
    """Tables keep their columns when stdout is a pipe or a file."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 140)


def _log(text: str) -> None:
    print(text, file=sys.stderr)


@images_app.command("build")
def images_build(
    only: OnlyOpt = None,
    platform: ImagePlatformOpt = None,
    docker_host: DockerHostOpt = None,
    insecure_engine: InsecureEngineOpt = False,
) -> None:
    """Build the worker images (containers/*/Dockerfile) through the Docker Engine API."""
    from workbench.containers.build import build_image
    from workbench.containers.engine import connect
    from workbench.containers.imagemap import parse_platform

    client = connect(docker_host, insecure=insecure_engine)
    arch = parse_platform(platform) if platform else None
    for spec in _images_for(arch, only):
        build_image(client, spec, arch, log=_log)


def _images_for(arch: str | None, only: list[str] | None) -> "list[ImageSpec]":
    """The images to build for ``arch``: those named (each must support it), else every image that does."""
    from workbench.containers.imagemap import load_image_map

    specs = load_image_map().selected(only)
    if arch is None or only:
        return specs
    for spec in specs:
        if arch not in spec.platforms:
            _log(f"{spec.name}: skipped, not built for {arch} (platforms: {', '.join(spec.platforms)})")
    return [spec for spec in specs if arch in spec.platforms]


@images_app.command("list")
def images_list(platform: ImagePlatformOpt = None, docker_host: DockerHostOpt = None,
                insecure_engine: InsecureEngineOpt = False) -> None:
    """Name, tag, size and architecture of each worker image on the engine."""
    from rich.table import Table

    from workbench.containers.build import list_images
    from workbench.containers.engine import connect
    from workbench.containers.imagemap import load_image_map, parse_platform

    table = Table("name", "tag", "size", "architecture", "created", "base")
    arch = parse_platform(platform) if platform else None
    for row in list_images(connect(docker_host, insecure=insecure_engine), load_image_map(), arch):
        size = f"{row['size'] / 1e6:,.1f} MB" if row["present"] else "not built"
        table.add_row(row["name"], row["tag"], size, row["arch"] or "-", row["created"] or "-", row["base"])
    _console().print(table)


@images_app.command("bootstrap")
def images_bootstrap(
    force: Annotated[bool, typer.Option("--force", help="Recreate base images that exist.")] = False,
    platform: ImagePlatformOpt = None,
    docker_host: DockerHostOpt = None,
) -> None:
    """Create the base images (debian:bookworm-slim via debootstrap, busybox from busybox-static) locally."""
    from workbench.containers.bootstrap import bootstrap_base
    from workbench.containers.engine import connect
    from workbench.containers.imagemap import load_image_map, parse_platform

    client = connect(docker_host)
    arch = parse_platform(platform) if platform else None
    for base in sorted({s.base for s in load_image_map().images.values() if arch is None or arch in s.platforms}):
        bootstrap_base(client, base, arch=arch, force=force, log=_log)


@bench_app.command("images")
def bench_images(
    dataset: DatasetOpt,
    query: QueryOpt,
    job: JobOpt = "grep",
    images: Annotated[str, typer.Option("--images", help="Images or grep engines, comma-separated.")] = "gnu-grep,busybox-grep,ripgrep",
    workers: WorkersOpt = None,
    repeat: RepeatOpt = 3,
    fixed: Annotated[bool, typer.Option("--fixed-strings", "-F", help="grep: QUERY is a literal.")] = False,
    extended: Annotated[bool, typer.Option("--extended-regexp", "-E", help="grep: extended regex.")] = False,
    mode: Annotated[str, typer.Option("--mode", help="pool: one long-lived container per core; per-shard: one per shard.")] = "pool",
    platforms: Annotated[Optional[str], typer.Option(
        "--platform", help="Platforms side by side, comma-separated (linux/amd64,linux/arm64,linux/arm/v7); "
        "those not the engine's run under qemu and are marked emulated.")] = None,
    docker_host: DockerHostOpt = None,
    json_out: JsonOpt = None,
    plot_out: PlotOpt = None,
) -> None:
    """One table on the same shards: median wall, MB/s, ratio to the fastest, image size, start-up cost."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from workbench.api import open_dataset
    from workbench.bench.images import compare_images, docker_version, plot
    from workbench.bench.measure import make_job

    ds = open_dataset(dataset)
    the_job = make_job(job, query, **({"fixed": fixed, "extended": extended} if job == "grep" else {}))
    names = [n.strip() for n in images.split(",") if n.strip()]
    err = Console(stderr=True)
    rows, raw = compare_images(ds, the_job, names, workers=workers, repeat=repeat, docker_host=docker_host, mode=mode,
                               platforms=[p.strip() for p in platforms.split(",") if p.strip()] if platforms else None,
                               on_run=lambda v, i, s: err.log(f"{v} run {i + 1}/{repeat}: {s.seconds:.3f} s")
                               if sys.stderr.isatty() else None)
    table = Table("variant", "image", "engine", "platform", "wall s", "MB/s", "× fastest", "image MB", "start-up s",
                  "hits", title=escape(f"{job} '{query}' on {ds.manifest.records:,} records ({ds.manifest.bytes / 1e6:,.1f} MB)"),
                  caption="emulated: under qemu user emulation on this host, not the speed of that hardware"
                  if any(r.emulated for r in rows) else None)
    for r in rows:
        platform = r.platform + (" (emulated)" if r.emulated else "")
        table.add_row(r.variant, r.image, r.engine, platform, f"{r.wall_s:.3f}", f"{r.mb_per_s:,.1f}", f"{r.ratio:.2f}",
                      "-" if r.size_mb is None else f"{r.size_mb:,.1f}",
                      "-" if r.startup_s is None else f"{r.startup_s:.3f}", f"{r.hits:,}")
    _console().print(table)
    save_outputs(json_out, plot_out, "images", {"dataset": str(ds.directory), "job": job, "query": query, "mode": mode,
                                                "platforms": platforms, "docker": docker_version(docker_host)},
                 rows, raw, lambda path: plot(rows, path, f"{job} '{query}'"))
