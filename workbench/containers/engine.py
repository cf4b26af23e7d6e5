"""Connecting to a Docker Engine (``unix://``, ``tcp://``, ``ssh://``) with errors that name the host.

An engine's API is root on its machine, so a plain ``tcp://`` engine on an address that is not
this machine's loopback is refused unless TLS is configured (``DOCKER_TLS_VERIFY`` /
``DOCKER_CERT_PATH``, as the docker CLI reads them) or the caller says ``insecure``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from workbench.containers.imagemap import normalize_arch
from workbench.errors import BackendError

if TYPE_CHECKING:
    import docker

DEFAULT_HOST = "unix:///var/run/docker.sock"


def engine_url(docker_host: str | None = None) -> str:
    return docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def connect(docker_host: str | None = None, timeout: int = 120, insecure: bool = False) -> "docker.DockerClient":
    """A client for the engine at ``docker_host`` (default ``$DOCKER_HOST`` or the local socket), pinged."""
    import docker

    url = engine_url(docker_host)
    if not url.startswith(("unix://", "tcp://", "ssh://", "http://", "https://")):
        raise BackendError(f"Docker host {url!r} must be a unix://, tcp:// or ssh:// URL")
    tls = tls_config() if url.startswith(("tcp://", "https://")) else None
    if url.startswith(("tcp://", "http://")) and tls is None and not insecure and not is_loopback(url):
        raise BackendError(f"Docker engine {url} is plain TCP on another machine: whoever reaches it is root there; "
                           "use ssh://, or TLS (DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH, port 2376), "
                           "or pass --insecure-engine")
    try:
        # ssh:// runs the system `ssh` client (keys and config as for `docker -H ssh://…`).
        client = docker.DockerClient(base_url=url, timeout=timeout, use_ssh_client=url.startswith("ssh://"), tls=tls)
        client.ping()
    except Exception as exc:  # requests, socket and SDK errors all mean "not reachable"
        raise BackendError(f"cannot reach the Docker engine at {url}: {_reason(exc)}") from None
    return client


def tls_config() -> Any:
    """The docker CLI's TLS settings from the environment (``DOCKER_TLS_VERIFY``, ``DOCKER_CERT_PATH``), or None."""
    if not (os.environ.get("DOCKER_TLS_VERIFY") or os.environ.get("DOCKER_CERT_PATH")):
        return None
    from docker.errors import TLSParameterError
    from docker.utils import kwargs_from_env

    try:
        return kwargs_from_env().get("tls") or None
    except TLSParameterError as exc:
        raise BackendError(f"Docker TLS settings (DOCKER_CERT_PATH, DOCKER_TLS_VERIFY): {exc}") from None


def is_loopback(url: str) -> bool:
    """Whether every address the URL's host resolves to is this machine's loopback."""
    host = urlsplit(url).hostname or ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


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
