"""Backend registry: name -> class, imported on first use; started backends are cached."""

from __future__ import annotations

import atexit
import importlib
from typing import Any

from workbench.backends.base import Backend, default_workers
from workbench.errors import WorkbenchError

BACKENDS: dict[str, str] = {
    "local": "workbench.backends.local:LocalBackend",
    "dask": "workbench.backends.dask:DaskBackend",
    "docker": "workbench.backends.docker:DockerBackend",
}

_started: dict[tuple[Any, ...], Backend] = {}


def backend_class(name: str) -> type[Backend]:
    try:
        module, _, attr = BACKENDS[name].partition(":")
    except KeyError:
        raise WorkbenchError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})") from None
    return getattr(importlib.import_module(module), attr)


def get_backend(name: str = "local", **options: Any) -> Backend:
    """A started backend of the registry's ``name`` for these options, reused across calls in this process."""
    return started_backend(backend_class(name), **options)


def started_backend(cls: type[Backend], **options: Any) -> Backend:
    """The started ``cls(**options)`` of this process (started on first use; ``None`` options are left out)."""
    options = {k: v for k, v in options.items() if v is not None}
    key = (cls, tuple(sorted(options.items())))
    backend = _started.get(key)
    if backend is None:
        backend = _started[key] = cls(**options)
    return backend


def release(backend: Backend) -> None:
    """Close a started backend and forget it (the next ``get_backend`` with its options starts anew)."""
    for key, started in list(_started.items()):
        if started is backend:
            del _started[key]
    backend.close()


@atexit.register
def close_all() -> None:
    """Close every cached backend (also registered at interpreter exit)."""
    while _started:
        _, backend = _started.popitem()
        try:
            backend.close()
        except Exception:  # pragma: no cover - best effort at exit
            pass


__all__ = ["BACKENDS", "Backend", "backend_class", "close_all", "default_workers", "get_backend", "release", "started_backend"]
