"""Connecting to a Docker Engine (``unix://``, ``tcp://``, ``ssh://``) with errors that name the host."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from workbench.containers.imagemap import normalize_arch
from workbench.errors import BackendError

if TYPE_CHECKING:
    import docker

DEFAULT_HOST = "unix:///var/run/docker.sock"


def engine_url(docker_host: str | None = None) -> str:
    return docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def connect(docker_host: str | None = None, timeout: int = 120) -> "docker.DockerClient":
    """A client for the engine at ``docker_host`` (default ``$DOCKER_HOST`` or the local socket), pinged."""
    import docker

    url = engine_url(docker_host)
    if not url.startswith(("unix://", "tcp://", "ssh://", "http://", "https://")):
        raise BackendError(f"Docker host {url!r} must be a unix://, tcp:// or ssh:// URL")
    try:
        # ssh:// runs the system `ssh` client (keys and config as for `docker -H ssh://…`).
        client = docker.DockerClient(base_url=url, timeout=timeout, use_ssh_client=url.startswith("ssh://"))
        client.ping()
    except Exception as exc:  # requests, socket and SDK errors all mean "not reachable"
        raise BackendError(f"cannot reach the Docker engine at {url}: {_reason(exc)}") from None
    return client


def engine_arch(client: "docker.DockerClient") -> str:
    """The engine's CPU architecture as the image map names it (amd64, arm64, armv7)."""
    return normalize_arch(client.info().get("Architecture", "x86_64"))


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    for marker in ("Connection refused", "No such file or directory", "Name or service not known",
                   "timed out", "Permission denied"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:200]
