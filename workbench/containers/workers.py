"""Sandboxed worker containers and the framed stdin/stdout protocol that feeds them shards.

A long-lived worker reads one request per line on its attached stdin (for command images the
shard's argv, shell-quoted; for the Python worker the job spec and the shard's manifest entry
as JSON) and, after each shard's output, writes ``TOKEN STATUS NBYTES\\n`` plus NBYTES of error text on stdout. Command
images (grep, BusyBox) run that loop in ``sh``; the rdkit image runs ``python -m
workbench.containers.worker --frame``. Containers are created with ``StdinOnce``: when the client goes
away their stdin closes, the loop ends, and ``auto_remove`` deletes them. A client killed between
creating a container and starting it leaves it "created", which ``auto_remove`` never deletes:
the next pool on that engine removes such orphans (``remove_orphans``).
"""

from __future__ import annotations

import socket
from typing import Any

import docker

from workbench.errors import BackendError, TransientError
from workbench.util.polling import poll

MOUNT = "/data"
OUT_MOUNT = "/out"  # where containers of an engine on this host write shard output (see ContainerPool)
#: The Python worker's cache (``WORKBENCH_CACHE``): a named volume of each engine, so the index
#: files one container hashed (``storage.integrity.has_digest``) are not hashed again by the next.
CACHE_VOLUME, CACHE_MOUNT = "workbench-cache", "/cache"
RUN_LABEL = "workbench.run"
#: A worker container still "created" (never started) this long after its creation is an orphan:
#: create -> attach -> start takes well under a second, even on a busy board.
ORPHAN_SECONDS = 120.0

#: Runs each shell-quoted argv read on stdin (``shlex.join``; quoting makes ``eval`` safe). With
#: ``WB_OUT`` set (an engine on this host), a shard's output goes to that file, not the attach stream.
SHELL_LOOP = r"""
while IFS= read -r argv; do
  eval "set -- $argv"
  if [ -n "$WB_OUT" ]; then "$@" >"$WB_OUT" 2>/tmp/wb.err; else "$@" 2>/tmp/wb.err; fi
  rc=$?
  printf '%s %s %s\n' "$WB_FRAME" "$rc" "$(wc -c </tmp/wb.err)"
  cat /tmp/wb.err
done
"""


def sandbox(root: str, memory: str, labels: dict[str, str]) -> dict[str, Any]:
    """Create options: dataset read-only at /data, no network, nobody, 1 CPU, a memory cap, no privileges."""
    return {
        "volumes": {root: {"bind": MOUNT, "mode": "ro"}},
        "network_mode": "none",
        "user": "65534:65534",
        "nano_cpus": 1_000_000_000,
        "mem_limit": memory,
        "memswap_limit": memory,
        "pids_limit": 256,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": True,
        "tmpfs": {"/tmp": "rw,size=64m,mode=1777"},
        "labels": labels,
        "auto_remove": True,
        # Results travel over the attach stream only: the default json-file log would make the
        # engine encode and write every result line a second time.
        "log_config": {"type": "none", "config": {}},
    }


class WorkerContainer:
    """One container attached over the Engine API; ``run(path)`` sends a shard and reads its frame."""

    def __init__(self, client: "docker.DockerClient", image: str, command: list[str], options: dict[str, Any],
                 token: str):
        self.token = token.encode()
        try:
            self.container = client.containers.create(image, command, stdin_open=True, **options)
        except (docker.errors.DockerException, OSError) as exc:  # the engine is failing or gone
            raise TransientError(f"cannot create a worker container: {exc}") from None
        self.name = self.container.name
        self.socket = None
        try:
            streams = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            self.socket = self.container.attach_socket(params=streams)
            self.container.start()
        except BaseException as exc:
            self.remove()
            if isinstance(exc, (docker.errors.DockerException, OSError)):
                raise TransientError(f"cannot start worker container {self.name}: {exc}") from None
            raise
        self._frames = _frames(self.socket)
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf known to hold no frame token
        self._err = bytearray()

    def run(self, request: str) -> tuple[int, bytes, bytes]:
        """Send one shard's request line; return (status, stdout, error text) once its frame arrives."""
        _raw(self.socket).sendall(request.encode() + b"\n")
        while True:
            status = self._parse_frame()
            if status is not None:
                return status
            self._read()

    def _read(self) -> None:
        for stream, data in self._frames:
            if stream == 1:
                self._buf.extend(data)
                return
            self._err = (self._err + data)[-2000:]
        said = self._err.decode("utf-8", "replace").strip().splitlines()
        raise TransientError(f"worker container {self.name} exited unexpectedly" + (f": {said[-1]}" if said else ""))

    def _parse_frame(self) -> tuple[int, bytes, bytes] | None:
        at = self._buf.find(self.token, self._scanned)
        if at < 0:
            self._scanned = max(0, len(self._buf) - len(self.token))
            return None
        end = self._buf.find(b"\n", at)
        if end < 0:
            return None
        _, status, size = self._buf[at:end].split()
        n = int(size)
        if len(self._buf) < end + 1 + n:
            return None
        payload, error = bytes(self._buf[:at]), bytes(self._buf[end + 1: end + 1 + n])
        del self._buf[: end + 1 + n]
        self._scanned = 0
        return int(status), payload, error

    def stop(self) -> None:
        """Kill without waiting: the engine deletes the container (``auto_remove``) on its own time."""
        self._detach()
        try:
            self.container.kill()
        except docker.errors.APIError:  # already exited (409) or gone (404): nothing left to stop
            pass
        except OSError:  # the engine cannot be reached: its containers are gone or end with their stdin
            pass

    def remove(self) -> None:
        """Kill and delete (idempotent; ``auto_remove`` may have done it; an engine that is gone
        has taken its containers with it, or they end when their stdin closes with this client)."""
        self._detach()
        try:
            self.container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                raise
        except OSError:  # the engine cannot be reached (requests' errors are OSErrors)
            pass

    def _detach(self) -> None:
        raw = _raw(self.socket) if self.socket is not None else None  # None once closed
        try:
            if raw is not None:
                raw.shutdown(socket.SHUT_RDWR)  # wakes a thread reading its frames
        except OSError:
            pass
        try:
            if self.socket is not None:
                self.socket.close()
        except OSError:
            pass


def _frames(sock: Any) -> Any:
    from docker.utils.socket import frames_iter

    return frames_iter(sock, tty=False)


def _raw(sock: Any) -> socket.socket:
    return getattr(sock, "_sock", sock)


def remove_orphans(client: "docker.DockerClient", older_than: float = ORPHAN_SECONDS) -> list[str]:
    """Remove worker containers never started, created over ``older_than`` s ago by the engine's
    clock (a board without a real-time clock may be far off ours); their names."""
    try:
        created = client.containers.list(all=True, filters={"label": RUN_LABEL, "status": "created"})
        if not created:
            return []
        now = _engine_time(client.info()["SystemTime"])
    except (docker.errors.DockerException, OSError, KeyError, ValueError):
        return []  # an engine we cannot ask: the run itself reports it
    removed = []
    for container in created:
        try:
            if now - _engine_time(container.attrs.get("Created", "")) > older_than:
                container.remove(force=True)
                removed.append(container.name)
        except (docker.errors.DockerException, OSError, ValueError):
            pass  # removed meanwhile, or a time we cannot read: leave it
    return removed


def _engine_time(stamp: str) -> float:
    """Seconds since the epoch of an engine's RFC 3339 time (``2026-12-01T13:30:05.123456789Z``,
    or with an offset as ``SystemTime`` has it on an engine not set to UTC)."""
    import re
    from datetime import datetime

    parts = re.fullmatch(r"([0-9-]+T[0-9:]+)(\.[0-9]+)?(Z|[+-][0-9:]+)", stamp)
    if parts is None:
        raise ValueError(f"not an engine time: {stamp!r}")
    whole, fraction, zone = parts.groups()
    seconds = datetime.fromisoformat(whole + zone.replace("Z", "+00:00")).timestamp()
    return seconds + float(fraction or 0)


def wait_gone(client: "docker.DockerClient", run_id: str, timeout: float = 10.0) -> None:
    """Wait until no container labelled ``run_id`` is left (``auto_remove`` is asynchronous)."""
    def removed() -> bool | None:
        try:
            left = client.containers.list(all=True, sparse=True, filters={"label": f"{RUN_LABEL}={run_id}"})
        except OSError:  # the engine is gone, and with it (or with their closed stdin) its containers
            return True
        for c in left:
            try:
                c.remove(force=True)
            except Exception:
                pass
        return None if left else True

    if poll(removed, timeout, interval=0.1):
        return
    raise BackendError(f"containers of run {run_id} were not removed within {timeout:.0f} s")
