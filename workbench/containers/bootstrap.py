"""Create the public base images locally, for engines that cannot pull from a registry.

``debian:bookworm-slim`` comes from ``debootstrap --variant=minbase bookworm`` (trimmed like the
official slim image) and ``busybox:1.35`` from Debian's ``busybox-static`` binary; both become
images through the Docker Engine API (``FROM scratch``) under the tag a user would otherwise pull.
For a foreign architecture (arm64, armv7 on an amd64 host) debootstrap runs ``--foreign`` and its
second stage in a chroot under qemu user emulation, BusyBox is that architecture's Debian package,
and the image gets the per-architecture tag ``arch_base`` (the local store holds one architecture
per tag).
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.containers.imagemap import DEBIAN_ARCHES, PLATFORMS, arch_base, host_arch, normalize_arch
from workbench.errors import EngineNotFound, WorkbenchError

if TYPE_CHECKING:
    import docker

Log = Callable[[str], None]
#: Progress lines go to this module's logger unless the caller passes its own ``log`` (the CLI: stderr).
_LOG: Log = logging.getLogger(__name__).info

DEBIAN_MIRROR = "http://deb.debian.org/debian"
#: The official slim image's dpkg filter: later `apt-get install`s skip docs and manuals too.
SLIM_DPKG_FILTER = """path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
"""
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"


def image_exists(client: "docker.DockerClient", tag: str) -> bool:
    import docker

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def bootstrap_base(client: "docker.DockerClient", tag: str, *, arch: str | None = None, force: bool = False,
                   log: Log = _LOG) -> bool:
    """Create base image ``tag`` (``debian:<suite>-slim`` or ``busybox:<version>``) for ``arch``
    (default: the engine's; another one under ``arch_base(tag, arch)``); False if it existed."""
    from workbench.containers.engine import engine_arch

    native = engine_arch(client)
    arch = normalize_arch(arch or native)
    target = tag if arch == native else arch_base(tag, arch)
    if not force and image_exists(client, target):
        log(f"{target}: present")
        return False
    repo, _, version = tag.partition(":")
    if repo not in ("debian", "busybox"):
        raise WorkbenchError(f"cannot bootstrap base image {tag!r}: only debian:<suite>-slim and busybox:<version>")
    if arch != host_arch():
        from workbench.containers.emulation import emulation_problem

        problem = emulation_problem(arch)
        if problem:
            raise EngineNotFound(f"bootstrapping {target} for {arch} on this {host_arch()} host needs qemu user "
                                 f"emulation: {problem}")
    if repo == "debian":
        bootstrap_debian(client, target, suite=version.removesuffix("-slim"), arch=arch, log=log)
    else:
        bootstrap_busybox(client, target, arch=arch, log=log)
    return True


def bootstrap_debian(client: "docker.DockerClient", tag: str, suite: str = "bookworm", arch: str | None = None,
                     mirror: str = DEBIAN_MIRROR, log: Log = _LOG) -> None:
    """``debootstrap --variant=minbase SUITE`` for ``arch`` (default: this host's), trimmed to a slim
    image, imported as ``tag``; a foreign architecture runs the second stage under emulation."""
    if shutil.which("debootstrap") is None:
        raise EngineNotFound("bootstrapping a Debian image needs debootstrap (apt-get install debootstrap)")
    arch = normalize_arch(arch or host_arch())
    foreign = arch != host_arch()
    with tempfile.TemporaryDirectory(prefix="workbench-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        log(f"{tag}: debootstrap --arch {DEBIAN_ARCHES[arch]} --variant=minbase {suite}"
            + (" (foreign; second stage under qemu: several minutes)" if foreign else " (about a minute)"))
        _run(["debootstrap", f"--arch={DEBIAN_ARCHES[arch]}", "--variant=minbase", *(["--foreign"] if foreign else []),
              suite, str(rootfs), mirror], f"debootstrap {suite} for {arch}")
        if foreign:
            try:
                _run(["chroot", str(rootfs), "/debootstrap/debootstrap", "--second-stage"],
                     f"the second stage of debootstrap {suite} for {arch}")
            finally:
                _unmount_under(rootfs)
        _slim(rootfs, suite, mirror)
        archive = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
        _import(client, archive, tag, arch, ['CMD ["bash"]'])
    log(f"{tag}: imported ({arch})")


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
        raise WorkbenchError(f"{what} failed: {' / '.join(tail)}")


def _unmount_under(rootfs: Path) -> None:
    """Unmount what a failed chroot step may have left mounted (/proc, /sys), before the tree is deleted."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(f"{rootfs}/")), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def _slim(rootfs: Path, suite: str, mirror: str) -> None:
    (rootfs / "etc/dpkg/dpkg.cfg.d/docker").write_text(SLIM_DPKG_FILTER)
    (rootfs / "etc/apt/sources.list").write_text(
        f"deb {mirror} {suite} main\ndeb {mirror} {suite}-updates main\n"
        f"deb http://deb.debian.org/debian-security {suite}-security main\n")
    for junk in ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale",
                 "var/cache/apt/archives", "var/lib/apt/lists"):
        path = rootfs / junk
        if path.exists():
            shutil.rmtree(path)
            path.mkdir()


def bootstrap_busybox(client: "docker.DockerClient", tag: str, arch: str | None = None, log: Log = _LOG) -> None:
    """A root filesystem of Debian's static BusyBox for ``arch`` (default: this host's), its applet
    links, ``/etc/passwd`` and ``/tmp``."""
    arch = normalize_arch(arch or host_arch())
    with tempfile.TemporaryDirectory(prefix="workbench-busybox-") as tmp:
        binary = _busybox_binary(arch, Path(tmp))
        applets = subprocess.run([str(binary), "--list"], capture_output=True, text=True, check=True).stdout.split()
        archive = Path(tmp) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            for d, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700)):
                info = tarfile.TarInfo(d)
                info.type, info.mode = tarfile.DIRTYPE, mode
                tar.addfile(info)
            tar.add(binary, "bin/busybox")
            for applet in applets:
                if applet != "busybox":
                    link = tarfile.TarInfo(f"bin/{applet}")
                    link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                    tar.addfile(link)
            for name, text in (("etc/passwd", PASSWD), ("etc/group", GROUP)):
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(text), 0o644
                tar.addfile(info, io.BytesIO(text.encode()))
        _import(client, archive, tag, arch, ['CMD ["sh"]', "ENV PATH=/bin"])
    log(f"{tag}: imported ({arch}, {len(applets)} applets)")


def _busybox_binary(arch: str, tmp: Path) -> Path:
    """This host's ``/bin/busybox`` (busybox-static), or that package for ``arch``, downloaded with apt."""
    if arch == host_arch():
        if shutil.which("dpkg-query") and subprocess.run(["dpkg-query", "-W", "busybox-static"],
                                                         capture_output=True).returncode != 0:
            raise EngineNotFound("bootstrapping the BusyBox image needs Debian's busybox-static "
                                 "(apt-get install busybox-static)")
        return Path("/bin/busybox")
    package = f"busybox-static:{DEBIAN_ARCHES[arch]}"
    if shutil.which("apt-get") is None:
        raise EngineNotFound(f"bootstrapping the BusyBox image for {arch} needs apt-get (Debian's {package})")
    proc = subprocess.run(["apt-get", "download", "-q", package], cwd=tmp, capture_output=True, text=True)
    debs = sorted(tmp.glob("busybox-static_*.deb"))
    if proc.returncode != 0 or not debs:
        said = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise EngineNotFound(f"bootstrapping the BusyBox image for {arch} needs Debian's {package}: "
                             f"dpkg --add-architecture {DEBIAN_ARCHES[arch]} && apt-get update (apt-get said: {said})")
    _run(["dpkg-deb", "-x", str(debs[0]), str(tmp / "pkg")], f"unpacking {debs[0].name}")
    return tmp / "pkg/bin/busybox"


def _import(client: "docker.DockerClient", archive: Path, tag: str, arch: str, instructions: list[str]) -> None:
    """``FROM scratch`` + the root file system ``archive``, built for ``arch`` (its image architecture)."""
    from workbench.containers.build import run_build

    context = archive.with_suffix(".context.tar")
    dockerfile = "\n".join(["FROM scratch", "ADD rootfs.tar /", *instructions, ""]).encode()
    with tarfile.open(context, "w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        tar.add(archive, "rootfs.tar")
    with open(context, "rb") as fileobj:
        run_build(client, tag, fileobj=fileobj, custom_context=True, platform=PLATFORMS[arch])
    if not image_exists(client, tag):
        raise WorkbenchError(f"importing {tag} into the Docker engine failed")
