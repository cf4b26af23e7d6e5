"""CLI commands: ``nodes``, ``place``, ``cluster up|status|down``, ``testbed up|down``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from workbench.cli import app
from workbench.cli.common import DatasetOpt

ClusterFileOpt = Annotated[Path, typer.Option("--cluster", help="Cluster file (TOML).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

cluster_app = typer.Typer(help="A Dask cluster across the cluster file's nodes.", no_args_is_help=True)
testbed_app = typer.Typer(help="Real nodes on this machine (network namespaces + sshd) to try clusters.",
                          no_args_is_help=True)
app.add_typer(cluster_app, name="cluster", rich_help_panel="Cluster")
app.add_typer(testbed_app, name="testbed", rich_help_panel="Cluster")


def _table(columns: list[str], rows: list[list[Any]]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, box=box.SIMPLE_HEAD, pad_edge=False)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console(width=None if sys.stdout.isatty() else 250).print(table)  # piped: never truncate cells


def _size(n: int | None) -> str:
    return "" if n is None else f"{n / 1e9:,.1f}G" if n < 10e9 else f"{n / 1e9:,.0f}G"


@app.command(rich_help_panel="Cluster")
def nodes(cluster: ClusterFileOpt, as_json: JsonOpt = False) -> None:
    """Probe every node over SSH: facts and health (temperature, throttling, load, memory, disk, NFS).

    Facts: arch, cores, memory, Docker and Python versions. Health: CPU temperature (the hottest
    CPU/SoC thermal zone in /sys/class/thermal), throttling (`vcgencmd get_throttled`, Raspberry Pi
    OS), 1-minute load, free memory and disk, the shared (NFS) mount state; "-" where not reported.
    Exit status 0 when every node is reachable and probed, 1 otherwise.
    """
    from workbench.cluster.inventory import load_cluster
    from workbench.cluster.probe import probe_nodes

    reports = probe_nodes(load_cluster(cluster))
    if as_json:
        print(json.dumps([r.to_dict() for r in reports], indent=1))
    else:
        _table(["node", "up", "arch", "cores", "°C", "throttled", "load", "mem free", "memory", "disk free",
                "shared", "docker", "python", "wb", "error"],
               [[r.name, "yes" if r.reachable else "no", r.arch, r.cores, _temperature(r.temperature),
                 _throttle(r.throttled, r.throttle) if r.reachable else "", f"{r.load[0]:.2f}" if r.load else "",
                 _size(r.memory_available), _size(r.memory), _size(r.data_dir_free), _shared(r.shared_state, r.shared_fs),
                 r.docker, r.python, r.workbench, r.error] for r in reports])
    raise typer.Exit(0 if all(r.reachable and not r.error for r in reports) else 1)


def _temperature(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _throttle(value: int | None, flags: list[str]) -> str:
    if value is None:
        return "-"
    return ", ".join(flags) if flags else "no"


def _shared(state: str | None, fs: str | None) -> str:
    if state is None:
        return ""
    return f"{state} ({fs})" if fs else state


@app.command(rich_help_panel="Cluster")
def place(
    dataset: DatasetOpt,
    cluster: ClusterFileOpt,
    mode: Annotated[str, typer.Option("--mode", help="local: copy shards to nodes' data_dir; shared: verify shared_dir.")] = "local",
    replicas: Annotated[int, typer.Option("--replicas", "-r", help="Copies of each shard on distinct nodes (local).")] = 1,
    mount_timeout: Annotated[float, typer.Option("--mount-timeout", help="Seconds to wait for shared_dir (shared).")] = 60.0,
    mount_interval: Annotated[float, typer.Option("--mount-interval", help="Seconds between mount checks (shared).")] = 2.0,
    as_json: JsonOpt = False,
) -> None:
    """Place the dataset's shards on the cluster and record the placement in its manifest."""
    from workbench.cluster.placement import place as run_place
    from workbench.cluster.placement import report_dicts

    reports = run_place(dataset, cluster, mode, replicas=replicas,  # type: ignore[arg-type]
                        mount_timeout=mount_timeout, mount_interval=mount_interval)
    if as_json:
        print(json.dumps(report_dicts(reports), indent=1))
        return
    _table(["node", "files", "copied", "copied MB", "verified", "seconds"],
           [[r.node, r.files, r.copied, f"{r.bytes_copied / 1e6:,.1f}", r.verified, f"{r.seconds:.2f}"]
            for r in reports])


@cluster_app.command("up")
def cluster_up(
    cluster: ClusterFileOpt,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for every worker to join.")] = 60.0,
    allow_missing: Annotated[bool, typer.Option("--allow-missing", help="Start on the reachable nodes even if some are not.")] = False,
) -> None:
    """Start a Dask scheduler here and single-threaded workers on every node (one per core)."""
    from workbench.cluster.daskcluster import cluster_up as up

    state = up(cluster, timeout=timeout, allow_missing=allow_missing)
    workers = sum(len(n["workers"]) for n in state["nodes"].values())
    print(f"scheduler {state['scheduler']}: {workers} workers on {len(state['nodes'])} nodes", file=sys.stderr)
    print(f"dask dashboard: {state['dashboard']}" if state.get("dashboard")
          else "dask dashboard: none (install bokeh for it)", file=sys.stderr)
    for node, why in state["missing"].items():
        print(f"warning: no workers on {node}: {why}", file=sys.stderr)


@cluster_app.command("status")
def cluster_status(cluster: ClusterFileOpt, as_json: JsonOpt = False) -> None:
    """Show the scheduler and, per node, the workers started and connected."""
    from workbench.cluster.daskcluster import cluster_status as status

    rows = status(cluster)
    if as_json:
        print(json.dumps(rows, indent=1))
    else:
        _table(["node", "host", "workers", "connected", "executing", "scheduler", "dashboard"],
               [[r["node"], r["host"], r["workers"], r["connected"], r["tasks"], r["scheduler"], r["dashboard"]]
                for r in rows])
    raise typer.Exit(0 if all(r["workers"] == r["connected"] for r in rows) else 1)


@cluster_app.command("down")
def cluster_down(cluster: ClusterFileOpt) -> None:
    """Stop every worker and the scheduler that `cluster up` started."""
    from workbench.cluster.daskcluster import cluster_down as down

    for what in down(cluster):
        print(f"stopped {what}", file=sys.stderr)


@testbed_app.command("up")
def testbed_up(
    cluster: ClusterFileOpt,
    nodes: Annotated[int, typer.Option("--nodes", "-n", min=1, help="How many nodes.")] = 3,
    subnet: Annotated[str, typer.Option("--subnet", help="Private IPv4 network for the nodes, or auto (a free 10.77.X.0/24).")] = "auto",
    cores: Annotated[int, typer.Option("--cores", min=1, help="Cores each node declares in the cluster file.")] = 1,
) -> None:
    """Build N nodes on this machine (needs root) and write the cluster file."""
    from workbench.testing.testbed import testbed_up as up

    path = up(cluster, nodes, subnet=subnet, cores=cores)
    print(f"testbed of {nodes} nodes is up; cluster file {path}", file=sys.stderr)


@testbed_app.command("down")
def testbed_down(cluster: ClusterFileOpt) -> None:
    """Remove the testbed: its cluster, namespaces, links, sshd processes and files."""
    from workbench.testing.testbed import testbed_down as down

    for what in down(cluster):
        print(f"removed {what}", file=sys.stderr)
