"""``workbench nodes``: probe every node over SSH, concurrently with a bounded fan-out."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from workbench.cluster.inventory import Cluster, Node
from workbench.cluster.ssh import NodeUnreachable, bounded, connect, raise_first, run

# Runs on the node with the node's Python: one round trip gathers every fact.
PROBE_SCRIPT = r"""
import json, os, platform, shutil, sys
data_dir, shared_dir, docker_url = sys.argv[1], sys.argv[2] or None, sys.argv[3] or None
def free(path):
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    return shutil.disk_usage(path or "/").free
def mem():
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
def fstype(path):
    best, kind = "", None
    with open("/proc/self/mounts") as fh:
        for line in fh:
            mnt, typ = line.split()[1:3]
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, kind = mnt, typ
    return kind
def docker_version():
    if not docker_url and not os.path.exists("/var/run/docker.sock"):
        return None
    try:
        import docker
        client = docker.DockerClient(base_url=docker_url or "unix:///var/run/docker.sock", timeout=5)
        return client.version().get("Version")
    except Exception:
        return None
try:
    import workbench
    wb = workbench.__version__
except Exception:
    wb = None
print(json.dumps({
    "arch": platform.machine(), "cores": len(os.sched_getaffinity(0)), "memory": mem(),
    "data_dir_free": free(data_dir), "data_dir_exists": os.path.isdir(data_dir),
    "shared_mounted": bool(shared_dir) and os.path.isdir(shared_dir) and bool(os.listdir(shared_dir)),
    "shared_fs": fstype(shared_dir) if shared_dir and os.path.isdir(shared_dir) else None,
    "docker": docker_version(), "python": platform.python_version(), "workbench": wb,
    "hostname": platform.node()}))
"""


@dataclass
class NodeReport:
    """What ``workbench nodes`` shows for one node (``--json`` prints a list of these)."""

    name: str
    host: str
    reachable: bool
    arch: str | None = None
    cores: int | None = None
    memory: int | None = None
    data_dir: str = ""
    data_dir_free: int | None = None
    shared_dir: str | None = None
    shared_mounted: bool | None = None
    shared_fs: str | None = None
    docker: str | None = None
    python: str | None = None
    workbench: str | None = None
    seconds: float = 0.0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def probe_node(cluster: Cluster, node: Node) -> NodeReport:
    """Probe one node; an unreachable node or a failing probe is reported, never raised."""
    start = time.perf_counter()
    report = NodeReport(node.name, node.host, False, data_dir=node.data_dir, shared_dir=node.shared_dir)
    try:
        conn = await connect(cluster, node)
    except NodeUnreachable as exc:
        report.error = exc.reason
        report.seconds = time.perf_counter() - start
        return report
    report.reachable = True
    try:
        async with conn:
            out = await run(conn, node.name, [node.python, "-c", PROBE_SCRIPT, node.data_dir,
                                              node.shared_dir or "", node.docker or ""])
        facts = json.loads(out)
        for key in ("arch", "cores", "memory", "data_dir_free", "shared_mounted", "shared_fs",
                    "docker", "python", "workbench"):
            setattr(report, key, facts.get(key))
        if node.shared_dir is None:
            report.shared_mounted = None
    except Exception as exc:  # reachable, but the probe failed (no Python on the node, …)
        report.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    report.seconds = time.perf_counter() - start
    return report


def probe_nodes(cluster: Cluster) -> list[NodeReport]:
    """Probe every node, at most ``cluster.concurrency`` at once; reports in cluster-file order."""

    async def main() -> list[NodeReport]:
        return raise_first(await bounded(cluster.nodes, lambda n: probe_node(cluster, n), cluster.concurrency))

    return asyncio.run(main())
