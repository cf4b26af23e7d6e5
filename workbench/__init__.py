"""workbench: shard big line-oriented chemistry datasets and search them on Dask or Docker.

    import workbench as wb
    ds = wb.ingest(["CID-SMILES.gz"], "pubchem", shard_size="64MB")
    ds = wb.open_dataset("pubchem")
    table = ds.grep("C(=O)N", fixed=True)

Imports are lazy so the command line starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Dataset": "workbench.api",
    "open_dataset": "workbench.api",
    "ingest": "workbench.api",
    "fetch_dataset": "workbench.api",
    "build_index": "workbench.api",
    "verify": "workbench.api",
    "WorkbenchError": "workbench.errors",
    "WorkbenchNote": "workbench.errors",
    "get_backend": "workbench.backends",
}

if TYPE_CHECKING:
    from workbench.api import Dataset, build_index, fetch_dataset, ingest, open_dataset, verify
    from workbench.backends import get_backend
    from workbench.errors import WorkbenchError, WorkbenchNote


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


__all__ = ["Dataset", "WorkbenchError", "WorkbenchNote", "__version__", "build_index", "fetch_dataset", "get_backend",
           "ingest", "open_dataset", "verify"]
