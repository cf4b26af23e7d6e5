"""What a benchmark ran on: this machine (CPU, cores, memory, kernel) and the versions that matter.

Every ``bench … --json`` document carries ``machine`` (and, for cluster runs, ``cluster``: one
``workbench nodes`` report per node), so a report can say where its figures come from.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

LIBRARIES = ("workbench", "dask", "distributed", "pyarrow", "numpy", "rdkit", "docker", "asyncssh")


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo (``model name`` on x86, ``Model`` on a Raspberry Pi)."""
    try:
        with open("/proc/cpuinfo") as fh:
            fields = dict(line.split(":", 1) for line in fh if ":" in line)
    except OSError:
        return platform.processor() or platform.machine()
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return fields.get("model name") or fields.get("Model") or fields.get("Hardware") or platform.machine()


def memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def versions() -> dict[str, str | None]:
    """Installed versions of the libraries a figure depends on, and of GNU grep."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    grep = shutil.which("grep")
    if grep:
        first = subprocess.run([grep, "--version"], capture_output=True, text=True).stdout.splitlines()
        out["grep"] = first[0] if first else None
    return out


def describe_machine() -> dict[str, Any]:
    """This machine and its software, for a benchmark document."""
    return {
        "hostname": platform.node(),
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory": memory_bytes(),
        "kernel": f"{platform.system()} {platform.release()}",
        "os": _os_name(),
        "versions": versions(),
    }


def _os_name() -> str:
    try:
        return platform.freedesktop_os_release().get("PRETTY_NAME", platform.platform())
    except OSError:
        return platform.platform()


def describe_cluster(cluster_file: str, health_only: bool = False) -> Any:
    """Every node's ``workbench nodes`` report (``health_only``: node -> temperature, throttling, load)."""
    from workbench.cluster.inventory import load_cluster
    from workbench.cluster.probe import probe_health, probe_nodes

    cluster = load_cluster(cluster_file)
    if health_only:
        return probe_health(cluster)
    return [r.to_dict() for r in probe_nodes(cluster)]


def document(kind: str, header: dict[str, Any], rows: list[Any], runs: list[dict[str, Any]],
             cluster: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The ``--json`` document of every benchmark: what ran, where, the table's rows, every raw run."""
    doc: dict[str, Any] = {"kind": kind, **header,
                           "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "machine": describe_machine()}
    if cluster is not None:
        doc["cluster"] = cluster
    doc["rows"] = [r if isinstance(r, dict) else r.__dict__ for r in rows]
    doc["runs"] = runs
    return doc
