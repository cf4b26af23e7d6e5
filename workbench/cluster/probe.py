"""``workbench nodes``: probe every node over SSH, concurrently with a bounded fan-out."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.cluster.inventory import Cluster, Node
from workbench.cluster.ssh import bounded, connect, raise_first, run, run_sync, session
from workbench.errors import NodeUnreachable

# Runs on the node with the node's Python: what a small board suffers from (heat, throttling,
# load, memory). One round trip; also the first half of PROBE_SCRIPT.
HEALTH_SCRIPT = r"""
import glob, json, os, platform, shutil, subprocess, sys
def thermal_zones():
    zones = {}
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
        try:
            with open(zone + "/type") as fh:
                kind = fh.read().strip()
            with open(zone + "/temp") as fh:
                zones[kind or os.path.basename(zone)] = int(fh.read().strip()) / 1000
        except (OSError, ValueError):
            continue
    return zones
def cpu_temperature(zones):
    cpu = [t for kind, t in zones.items() if any(w in kind.lower() for w in ("cpu", "soc", "x86_pkg", "core"))]
    values = cpu or list(zones.values())
    return max(values) if values else None
def throttled():
    tool = shutil.which("vcgencmd") or next((p for p in ("/usr/bin/vcgencmd", "/opt/vc/bin/vcgencmd") if os.path.exists(p)), None)
    if not tool:
        return None
    try:
        out = subprocess.run([tool, "get_throttled"], capture_output=True, text=True, timeout=5).stdout
        return int(out.strip().split("=", 1)[1], 16)
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None
def meminfo():
    found = {}
    with open("/proc/meminfo") as fh:
        for line in fh:
            key, _, rest = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                found[key] = int(rest.split()[0]) * 1024
    return found
def health():
    zones = thermal_zones()
    return {"temperature": cpu_temperature(zones), "thermal_zones": zones, "throttled": throttled(),
            "load": list(os.getloadavg()), "memory_available": meminfo().get("MemAvailable")}
if __name__ == "__main__" and sys.argv[1:] == ["health"]:
    print(json.dumps(health()))
"""

PROBE_SCRIPT = HEALTH_SCRIPT + r"""
data_dir, shared_dir, docker_url = sys.argv[1], sys.argv[2] or None, sys.argv[3] or None
def free(path):
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    return shutil.disk_usage(path or "/")
def fstype(path):
    best, kind = "", None
    with open("/proc/self/mounts") as fh:
        for line in fh:
            mnt, typ = line.split()[1:3]
            if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                best, kind = mnt, typ
    return kind
def shared_state(path):
    if not path:
        return None, None
    try:
        if not os.path.isdir(path):
            return "missing", None
        return ("mounted" if os.listdir(path) else "empty"), fstype(path)
    except OSError as exc:  # ESTALE: the NFS server went away or re-exported
        return ("stale" if exc.errno == 116 else "error: " + (exc.strerror or str(exc))), None
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
disk = free(data_dir)
state, fs = shared_state(shared_dir)
print(json.dumps({
    "arch": platform.machine(), "cores": len(os.sched_getaffinity(0)), "memory": meminfo().get("MemTotal"),
    "data_dir_free": disk.free, "data_dir_total": disk.total, "data_dir_exists": os.path.isdir(data_dir),
    "shared_mounted": state == "mounted", "shared_state": state, "shared_fs": fs,
    "docker": docker_version(), "python": platform.python_version(), "workbench": wb,
    "hostname": platform.node(), **health()}))
"""

# bits of `vcgencmd get_throttled` (Raspberry Pi firmware)
THROTTLE_BITS = {0: "under-voltage", 1: "frequency capped", 2: "throttled", 3: "soft temperature limit"}


def throttle_flags(value: int | None) -> list[str]:
    """``vcgencmd get_throttled`` decoded: what is happening now, and (``… since boot``) what has happened."""
    if value is None:
        return []
    flags = [what for bit, what in THROTTLE_BITS.items() if value & (1 << bit)]
    flags += [f"{what} since boot" for bit, what in THROTTLE_BITS.items()
              if value & (1 << (bit + 16)) and not value & (1 << bit)]
    return flags


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
    # health: what a small board suffers from (None where the node does not report it)
    temperature: float | None = None  # °C, the hottest CPU/SoC thermal zone
    thermal_zones: dict[str, float] = field(default_factory=dict)
    throttled: int | None = None  # `vcgencmd get_throttled` (Raspberry Pi OS)
    throttle: list[str] = field(default_factory=list)  # its bits decoded
    load: list[float] | None = None  # 1, 5, 15 minute load averages
    memory_available: int | None = None
    data_dir_total: int | None = None
    shared_state: str | None = None  # mounted, empty, missing, stale (NFS), or None (no shared_dir)

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
        for key in ("arch", "cores", "memory", "data_dir_free", "data_dir_total", "shared_mounted", "shared_state",
                    "shared_fs", "docker", "python", "workbench", "temperature", "thermal_zones", "throttled",
                    "load", "memory_available"):
            setattr(report, key, facts.get(key))
        report.throttle = throttle_flags(report.throttled)
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

    return run_sync(main())


async def health_of(cluster: Cluster, node: Node) -> dict[str, Any]:
    """One node's temperature, throttling, load and free memory now (``error`` when unreachable)."""
    try:
        async with session(cluster, node) as conn:
            facts = json.loads(await run(conn, node.name, [node.python, "-c", HEALTH_SCRIPT, "health"]))
    except Exception as exc:  # a health sample never fails a run: say why it is missing
        return {"error": exc.reason if isinstance(exc, NodeUnreachable) else str(exc) or type(exc).__name__}
    facts["throttle"] = throttle_flags(facts.get("throttled"))
    return facts


def probe_health(cluster: Cluster, nodes: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Node name -> ``health_of`` for every node (or those named), concurrently."""
    chosen = [n for n in cluster.nodes if nodes is None or n.name in nodes]

    async def main() -> list[dict[str, Any]]:
        return raise_first(await bounded(chosen, lambda n: health_of(cluster, n), cluster.concurrency))

    return dict(zip((n.name for n in chosen), run_sync(main())))


def local_health() -> dict[str, dict[str, Any]]:
    """This machine's ``health_of``, under its node name (``WORKBENCH_NODE`` or the hostname)."""
    import subprocess
    import sys

    from workbench.jobs.base import node_name

    proc = subprocess.run([sys.executable, "-c", HEALTH_SCRIPT, "health"], capture_output=True, text=True)
    try:
        facts = json.loads(proc.stdout)
    except ValueError:
        facts = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    else:
        facts["throttle"] = throttle_flags(facts.get("throttled"))
    return {node_name(): facts}
