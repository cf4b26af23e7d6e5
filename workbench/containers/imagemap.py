"""The image map (``containers/images.toml``): canonical image names, tags per architecture, job -> image."""

from __future__ import annotations

import os
import platform
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.util.resources import shipped_dir

#: How engines and kernels spell architectures -> the names the image map uses.
ARCH_ALIASES = {
    "x86_64": "amd64", "amd64": "amd64",
    "aarch64": "arm64", "arm64": "arm64",
    "armv7l": "armv7", "armv7": "armv7", "arm": "armv7", "armhf": "armv7",
}
#: Architecture -> the ``--platform`` string of a build.
PLATFORMS = {"amd64": "linux/amd64", "arm64": "linux/arm64", "armv7": "linux/arm/v7"}
#: Architecture -> Debian's name for it (debootstrap --arch, apt's pkg:ARCH).
DEBIAN_ARCHES = {"amd64": "amd64", "arm64": "arm64", "armv7": "armhf"}


def containers_dir() -> Path:
    """Where the recipes are: ``$WORKBENCH_CONTAINERS``, else the ``containers/`` shipped with workbench."""
    env = os.environ.get("WORKBENCH_CONTAINERS")
    return Path(env) if env else shipped_dir("containers")


def normalize_arch(arch: str) -> str:
    try:
        return ARCH_ALIASES[arch.lower()]
    except KeyError:
        raise WorkbenchError(f"unknown CPU architecture {arch!r} (known: {', '.join(PLATFORMS)})") from None


def parse_platform(platform: str) -> str:
    """``linux/arm64``, ``linux/arm/v7``, ``arm64``, ``aarch64``… -> the image map's architecture name."""
    text = platform.strip().lower().removeprefix("linux/")
    try:
        return normalize_arch({"arm/v7": "armv7", "arm/v8": "arm64", "arm64/v8": "arm64"}.get(text, text))
    except WorkbenchError:
        raise WorkbenchError(f"unknown platform {platform!r} (known: {', '.join(PLATFORMS.values())})") from None


def arch_base(base: str, arch: str) -> str:
    """The local tag of base image ``base`` for a foreign ``arch`` (the local image store holds one
    architecture per tag): ``debian:bookworm-slim`` -> ``debian:bookworm-slim-arm64``."""
    return f"{base}-{arch}"


def host_arch() -> str:
    return normalize_arch(platform.machine())


@dataclass(frozen=True)
class ImageSpec:
    """One canonical worker image."""

    name: str
    recipe: Path
    tag: str
    base: str
    memory: str = "512m"
    wheelhouse: bool = False
    platforms: tuple[str, ...] = ("amd64",)
    arch_tags: dict[str, str] = field(default_factory=dict)

    def tag_for(self, arch: str) -> str:
        """The tag to run on a node of ``arch``."""
        arch = normalize_arch(arch)
        if arch not in self.platforms:
            raise WorkbenchError(f"image {self.name!r} is not built for {arch} (platforms: {', '.join(self.platforms)})")
        return self.arch_tags.get(arch, self.tag)


@dataclass
class ImageMap:
    images: dict[str, ImageSpec]
    jobs: dict[str, str]

    def get(self, name: str) -> ImageSpec:
        try:
            return self.images[name]
        except KeyError:
            raise WorkbenchError(f"unknown image {name!r} (known: {', '.join(self.images)})") from None

    def job_key(self, job: Any) -> str:
        engine = getattr(job, "image_engine", None) or getattr(job, "engine", None)
        return f"{job.name}/{engine}" if engine else job.name

    def for_job(self, job: Any) -> ImageSpec:
        """The canonical image that runs ``job`` (grep picks it by engine)."""
        key = self.job_key(job)
        name = self.jobs.get(key) or self.jobs.get(job.name)
        if name is None:
            raise WorkbenchError(f"no worker image for job {key!r} in the image map; pass --image")
        return self.get(name)

    def selected(self, only: list[str] | None) -> list[ImageSpec]:
        return [self.get(n) for n in only] if only else list(self.images.values())


def load_image_map(path: str | os.PathLike[str] | None = None) -> ImageMap:
    """Read the image map (default ``containers/images.toml``); a bad one is a ``WorkbenchError``."""
    path = Path(path) if path else containers_dir() / "images.toml"
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise WorkbenchError(f"image map {path} not found (set WORKBENCH_CONTAINERS to the recipes directory)") from None
    except tomllib.TOMLDecodeError as exc:
        raise WorkbenchError(f"image map {path} is not valid TOML: {exc}") from None
    images = {}
    for name, d in data.get("images", {}).items():
        try:
            images[name] = ImageSpec(
                name=name, recipe=path.parent / d.get("recipe", name), tag=d["tag"], base=d["base"],
                memory=d.get("memory", "512m"), wheelhouse=bool(d.get("wheelhouse", False)),
                platforms=tuple(normalize_arch(a) for a in d.get("platforms", ["amd64"])),
                arch_tags={normalize_arch(a): t for a, t in d.get("arch", {}).items()},
            )
        except KeyError as exc:
            raise WorkbenchError(f"image map {path}: image {name!r} lacks {exc.args[0]!r}") from None
    jobs = dict(data.get("jobs", {}))
    for key, name in jobs.items():
        if name not in images:
            raise WorkbenchError(f"image map {path}: job {key!r} names unknown image {name!r}")
    return ImageMap(images, jobs)
