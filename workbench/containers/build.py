"""Build the worker images through the Docker Engine API, and list them.

Python packages reach the ``rdkit`` image through a host-side wheelhouse: ``pip download``
runs on the host (which reaches the package index, through its proxy and CA) and the wheels
travel in the build context, because ``pip install`` inside a build often cannot (no network,
or a TLS-intercepting proxy whose CA the base image does not trust).
"""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.containers.imagemap import PLATFORMS, ImageMap, ImageSpec, arch_base, normalize_arch
from workbench.errors import WorkbenchError
from workbench.util.downloads import cache_dir, pip

if TYPE_CHECKING:
    import docker

Log = Callable[[str], None]
#: Progress lines go to this module's logger unless the caller passes its own ``log`` (the CLI: stderr).
_LOG: Log = logging.getLogger(__name__).info

#: pip ``--platform`` tags of the manylinux wheels each architecture can run (Debian bookworm: glibc 2.36).
WHEEL_PLATFORMS = {
    "amd64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"],
    "arm64": ["manylinux_2_28_aarch64", "manylinux_2_17_aarch64", "manylinux2014_aarch64"],
    "armv7": ["manylinux_2_31_armv7l", "linux_armv7l"],
}
PYTHON_VERSION = "3.11"  # Debian bookworm's python3


def wheelhouse(spec: ImageSpec, arch: str, log: Log = _LOG) -> Path:
    """``pip download`` the recipe's requirements for ``arch`` (cached)."""
    requirements = spec.recipe / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    target = cache_dir() / "wheelhouse" / f"{spec.name}-{arch}-{digest}"
    stamp = target / ".complete"
    if not stamp.exists():
        log(f"{spec.name}: downloading wheels for {arch} into {target}")
        platforms = [a for p in WHEEL_PLATFORMS[arch] for a in ("--platform", p)]
        pip("download", "--only-binary=:all:", *platforms, "--python-version", PYTHON_VERSION,
             "--implementation", "cp", "-d", str(target), "-r", str(requirements))
        stamp.touch()
    return target


def build_context(spec: ImageSpec, wheels: Path | None) -> io.BytesIO:
    """The recipe directory as a tar build context; with ``wheels``, also ``wheels/`` and the
    ``workbench/`` package source (the worker entry point and the jobs)."""
    if not (spec.recipe / "Dockerfile").is_file():
        raise WorkbenchError(f"image {spec.name!r}: no Dockerfile in {spec.recipe}")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(spec.recipe, ".")
        if wheels is not None:
            for whl in sorted(wheels.glob("*.whl")):
                tar.add(whl, f"wheels/{whl.name}")
            package = Path(__file__).resolve().parents[1]
            tar.add(package, "workbench", filter=_skip_caches)
    buf.seek(0)
    return buf


#: What the Python worker runs; an image carrying an older copy gives other results than the host.
WORKER_SOURCES = ("errors.py", "util", "jobs", "chem", "storage", "containers/worker.py")
SOURCE_LABEL = "org.workbench.source"


def source_digest() -> str:
    """A digest of the workbench modules the Python worker runs (labels the images that carry them)."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for entry in WORKER_SOURCES:
        path = package / entry
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(str(f.relative_to(package)).encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()[:16]


def _skip_caches(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Leave out bytecode caches and the recipes an installed wheel carries (``workbench/_data``)."""
    skip = "__pycache__" in info.name or info.name.endswith(".pyc") or info.name.startswith("workbench/_data")
    return None if skip else info


def base_image(client: "docker.DockerClient", spec: ImageSpec, arch: str) -> str:
    """The local base image to build ``spec`` for a foreign ``arch`` from: its per-architecture tag,
    else ``spec.base`` if that is of ``arch``."""
    import docker

    for tag in (arch_base(spec.base, arch), spec.base):
        try:
            if image_arch(client.images.get(tag).attrs) == arch:
                return tag
        except docker.errors.ImageNotFound:
            continue
    raise WorkbenchError(f"no {arch} base image for {spec.name} ({arch_base(spec.base, arch)}): run `workbench "
                         f"images bootstrap --platform {PLATFORMS[arch]}`, or pull {spec.base} for {PLATFORMS[arch]} "
                         f"and tag it {arch_base(spec.base, arch)}")


def image_arch(attrs: dict[str, Any]) -> str | None:
    """An image's architecture (its ``Architecture`` and ``Variant``) as the image map names it."""
    name = attrs.get("Architecture") or ""
    try:
        return normalize_arch(f"{name}{attrs.get('Variant') or ''}" if name == "arm" else name)
    except WorkbenchError:
        return None


def build_image(client: "docker.DockerClient", spec: ImageSpec, arch: str | None = None,
                log: Log = _LOG) -> str:
    """Build ``spec`` for ``arch`` (default: the engine's; another one under emulation); returns the tag."""
    from workbench.containers.engine import engine_arch

    native = engine_arch(client)
    arch = arch or native
    tag = spec.tag_for(arch)
    base = spec.base if arch == native else base_image(client, spec, arch)
    wheels = wheelhouse(spec, arch, log) if spec.wheelhouse else None
    log(f"{spec.name}: building {tag} for {arch} from {base}")
    run_build(client, tag, fileobj=build_context(spec, wheels), custom_context=True, buildargs={"BASE": base},
              network_mode="host", platform=None if arch == native else PLATFORMS[arch],
              labels={SOURCE_LABEL: source_digest()} if spec.wheelhouse else None)
    log(f"{spec.name}: built {tag}")
    return tag


def run_build(client: "docker.DockerClient", tag: str, **options: Any) -> None:
    """One ``docker build`` through the Engine API, never pulling; a failing step -> ``WorkbenchError``."""
    stream = client.api.build(tag=tag, rm=True, forcerm=True, pull=False, decode=True, **options)
    tail: list[str] = []
    for chunk in stream:
        if "error" in chunk:
            hint = " (run `workbench images bootstrap` first)" if "pull access denied" in chunk["error"] \
                or "not found" in chunk["error"] else ""
            context = f" after: {tail[-1]}" if tail else ""
            raise WorkbenchError(f"building {tag} failed: {chunk['error'].strip()}{hint}{context}")
        line = chunk.get("stream", "").strip()
        if line and not line.startswith(("--->", "Removing intermediate container")):
            tail = (tail + [line])[-5:]


def list_images(client: "docker.DockerClient", imap: ImageMap, arch: str | None = None) -> list[dict[str, Any]]:
    """Name, tag, size, architecture and creation time of each mapped image on this engine."""
    import docker

    from workbench.containers.engine import engine_arch

    arch = arch or engine_arch(client)
    rows = []
    for spec in imap.images.values():
        tag = spec.tag_for(arch) if arch in spec.platforms else spec.tag
        row: dict[str, Any] = {"name": spec.name, "tag": tag, "present": False, "size": None,
                               "arch": None, "created": None, "base": spec.base}
        try:
            attrs = client.images.get(tag).attrs
            row.update(present=True, size=attrs["Size"], created=attrs["Created"][:19],
                       arch="/".join(filter(None, (attrs.get("Os"), attrs.get("Architecture"), attrs.get("Variant")))))
        except docker.errors.ImageNotFound:
            pass
        rows.append(row)
    return rows
