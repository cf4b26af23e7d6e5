"""The runner: a job over a dataset on a backend (``Run``), its final step and its stats.

``open_backend`` picks the backend for a run's options: a cluster file's nodes go through
``workbench.cluster.backends``; everything else through the backend registry.
"""

from __future__ import annotations

from typing import Any

from workbench.backends import Backend, backend_class, started_backend
from workbench.runner.run import Run
from workbench.runner.stats import RunStats


def open_backend(name: str = "local", **options: Any) -> Backend:
    """A started backend for these options (``cluster=FILE`` runs on that cluster's nodes), reused."""
    if options.get("cluster"):
        from workbench.cluster.backends import cluster_backend_class

        return started_backend(cluster_backend_class(name), **options)
    return started_backend(backend_class(name), **options)


__all__ = ["Run", "RunStats", "open_backend"]
