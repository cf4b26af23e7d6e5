"""``workbench bench images``: the same job on the same shards in each worker image, plus no container.

Each variant gets one untimed warm-up and ``repeat`` timed runs; rows report the median wall,
MB/s, the ratio to the fastest variant, the image size and the container start-up cost
(create + start + exit + remove of one container, median of a few). Given ``platforms``, every
image runs once per platform (its build for that architecture); rows of an architecture other
than the engine's run under qemu user emulation and say so (``emulated``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from workbench.api import Dataset
from workbench.bench.measure import repeated_runs
from workbench.containers.imagemap import ImageMap
from workbench.errors import WorkbenchError
from workbench.jobs.base import Job
from workbench.runner.stats import RunStats

LOCAL = "local"


@dataclass
class ImageRow:
    variant: str
    image: str
    engine: str
    wall_s: float
    mb_per_s: float
    ratio: float
    size_mb: float | None
    startup_s: float | None
    hits: int
    platform: str = ""  # the architecture of the image (local: the host's)
    emulated: bool = False  # ran under qemu user emulation: not the speed of that hardware


@dataclass(frozen=True)
class Variant:
    name: str
    image: str | None  # canonical image name; None = local backend
    engine: str | None  # grep engine, None for other jobs


def variants(names: list[str], job: Job, imap: ImageMap) -> list[Variant]:
    """Resolve ``gnu-grep``, ``busybox-grep``, ``ripgrep``, ``rdkit``… to (image, grep engine)."""
    out = []
    for name in names:
        if job.name != "grep":
            out.append(Variant(name, imap.get(name).name, None))
            continue
        engines = [key.split("/", 1)[1] for key, image in imap.jobs.items() if key.startswith("grep/") and image == name]
        if engines:  # an image name: its first engine (gnu-grep -> gnu)
            out.append(Variant(name, name, engines[0]))
        elif f"grep/{name}" in imap.jobs:  # an engine name: the image that runs it (ripgrep -> gnu-grep)
            out.append(Variant(name, imap.jobs[f"grep/{name}"], name))
        else:
            raise WorkbenchError(f"unknown image or grep engine {name!r} (images: {', '.join(imap.images)})")
    return out


def startup_cost(client: Any, tag: str, samples: int = 3) -> float:
    """Median seconds to create, start, run ``true`` to exit, and remove one container of ``tag``."""
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        client.containers.run(tag, ["true"], remove=True, network_mode="none", labels={"workbench.bench": "startup"})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare_images(dataset: Dataset, job: Job, names: list[str], *, workers: int | None = None, repeat: int = 3,
                   docker_host: str | None = None, mode: str = "pool", platforms: list[str] | None = None,
                   on_run: Callable[[str, int, RunStats], None] | None = None
                   ) -> tuple[list[ImageRow], list[dict[str, Any]]]:
    """Run the comparison (each image on each of ``platforms``, default: the engine's own);
    returns table rows (local baseline first) and every raw run."""
    from workbench.backends import get_backend
    from workbench.containers.imagemap import host_arch, load_image_map, parse_platform

    imap = load_image_map()
    images = variants(names, job, imap)
    arches: list[str | None] = [parse_platform(p) for p in platforms] if platforms else [None]
    plan = [(Variant(LOCAL, None, getattr(job, "engine", None)), None),
            *((v, arch) for arch in arches for v in images)]
    raw: list[dict[str, Any]] = []
    measured = []
    for v, arch in plan:
        variant_job = replace(job, engine=v.engine) if v.engine else job  # type: ignore[type-var]
        options: dict[str, Any] = {"backend": "local", "workers": workers}
        size = startup = None
        tag, platform, emulated = "(no container)", host_arch(), False
        if v.image:
            options = {"backend": "docker", "workers": workers, "image": v.image, "docker_host": docker_host,
                       "mode": mode, "platform": arch}
            backend = get_backend("docker", **{k: v for k, v in options.items() if k != "backend"})
            tag, _ = backend.resolve_image(variant_job)  # type: ignore[attr-defined]
            platform = arch or backend.arch  # type: ignore[attr-defined]
            emulated = platform != backend.arch  # type: ignore[attr-defined]
            size = backend.client.images.get(tag).attrs["Size"] / 1e6  # type: ignore[attr-defined]
            startup = startup_cost(backend.client, tag)  # type: ignore[attr-defined]
        label = v.name if len(arches) == 1 or not v.image else f"{v.name}@{platform}"
        runs = repeated_runs(dataset, variant_job, repeat,
                             (lambda _cache, i, st, label=label: on_run(label, i, st)) if on_run else None, **options)
        raw += [m.record(variant=v.name, image=tag, platform=platform, emulated=emulated, repeat=i)
                for i, m in enumerate(runs)]
        measured.append((v, tag, statistics.median(m.stats.seconds for m in runs), size, startup, runs[-1].stats.hits,
                         platform, emulated))
    fastest = min(m[2] for m in measured)
    mb = dataset.manifest.bytes / 1e6
    rows = [ImageRow(v.name, tag, v.engine or "-", wall, mb / wall if wall else 0.0, wall / fastest if fastest else 0.0,
                     size, startup, hits, platform, emulated)
            for v, tag, wall, size, startup, hits, platform, emulated in measured]
    return rows, raw


def docker_version(docker_host: str | None = None) -> dict[str, Any]:
    """The engine's version and OS, for the benchmark document."""
    from workbench.containers.engine import connect

    info = connect(docker_host).version()
    return {"version": info.get("Version"), "api": info.get("ApiVersion"), "os": info.get("Os"),
            "arch": info.get("Arch"), "kernel": info.get("KernelVersion")}


def figure(rows: list[ImageRow | dict[str, Any]], title: str) -> Any:
    """MB/s per variant, bars labelled with the ratio to the fastest."""
    from workbench.bench.charts import bar_chart, new_figure

    rows_d = [r if isinstance(r, dict) else r.__dict__ for r in rows]
    several = len({r.get("platform", "") for r in rows_d}) > 1
    labels = [r["variant"] + (f"\n{r.get('platform', '')}" + (" (emulated)" if r.get("emulated") else "")
                              if several else "") for r in rows_d]
    fig, ax = new_figure(1, width=7, height=3.6)
    bar_chart(ax, labels, [r["mb_per_s"] for r in rows_d], [f"{r['ratio']:.1f}×" for r in rows_d], ylabel="MB/s",
              title=title, colours=["tab:orange" if r.get("emulated") else "tab:blue" for r in rows_d])
    return fig


def plot(rows: list[ImageRow], path: str, title: str) -> None:
    """MB/s per variant to a PNG (or SVG) file."""
    from workbench.bench.charts import save

    save(figure(list(rows), title), path)
