"""Create the public base images locally, for engines that cannot pull from a registry.

``debian:bookworm-slim`` comes from ``debootstrap --variant=minbase bookworm`` (trimmed like the
official slim image) and ``busybox:1.35`` from Debian's ``busybox-static`` binary; both are
imported with the Docker Engine API under the tag a user would otherwise pull.
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


def bootstrap_base(client: "docker.DockerClient", tag: str, *, force: bool = False, log: Log = _LOG) -> bool:
    """Create base image ``tag`` (``debian:<suite>-slim`` or ``busybox:<version>``); False if it existed."""
    if not force and image_exists(client, tag):
        log(f"{tag}: present")
        return False
    repo, _, version = tag.partition(":")
    if repo == "debian":
        bootstrap_debian(client, tag, suite=version.removesuffix("-slim"), log=log)
    elif repo == "busybox":
        bootstrap_busybox(client, tag, log=log)
    else:
        raise WorkbenchError(f"cannot bootstrap base image {tag!r}: only debian:<suite>-slim and busybox:<version>")
    return True


def bootstrap_debian(client: "docker.DockerClient", tag: str, suite: str = "bookworm",
                     mirror: str = DEBIAN_MIRROR, log: Log = _LOG) -> None:
    """``debootstrap --variant=minbase SUITE``, trimmed to a slim image, imported as ``tag``."""
    if shutil.which("debootstrap") is None:
        raise EngineNotFound("bootstrapping a Debian image needs debootstrap (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(prefix="workbench-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        log(f"{tag}: debootstrap --variant=minbase {suite} (about a minute)")
        proc = subprocess.run(["debootstrap", "--variant=minbase", suite, str(rootfs), mirror],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            raise WorkbenchError(f"debootstrap {suite} failed: {' / '.join(tail)}")
        _slim(rootfs, suite, mirror)
        archive = Path(tmp) / "rootfs.tar"
        subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(archive), "."], check=True)
        _import(client, archive, tag, ['CMD ["bash"]'])
    log(f"{tag}: imported")


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


def bootstrap_busybox(client: "docker.DockerClient", tag: str, log: Log = _LOG) -> None:
    """A root filesystem of Debian's static BusyBox, its applet links, ``/etc/passwd`` and ``/tmp``."""
    binary = Path("/bin/busybox")
    if shutil.which("dpkg-query") and subprocess.run(["dpkg-query", "-W", "busybox-static"],
                                                     capture_output=True).returncode != 0:
        raise EngineNotFound("bootstrapping the BusyBox image needs Debian's busybox-static (apt-get install busybox-static)")
    applets = subprocess.run([str(binary), "--list"], capture_output=True, text=True, check=True).stdout.split()
    with tempfile.TemporaryDirectory(prefix="workbench-busybox-") as tmp:
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
        _import(client, archive, tag, ['CMD ["sh"]', "ENV PATH=/bin"])
    log(f"{tag}: imported ({len(applets)} applets)")


def _import(client: "docker.DockerClient", archive: Path, tag: str, changes: list[str]) -> None:
    repo, _, version = tag.partition(":")
    client.api.import_image_from_file(str(archive), repository=repo, tag=version or "latest", changes=changes)
    if not image_exists(client, tag):
        raise WorkbenchError(f"importing {tag} into the Docker engine failed")
