"""``workbench cluster up|status|down``: a Dask scheduler here, ``dask worker`` processes on every node.

The scheduler runs on the coordinator (this machine, listening on the cluster file's
``coordinator`` address). Each node runs one ``dask worker`` command started over SSH with
``--nworkers CORES --nthreads 1 --name NODE`` (so worker names are ``NODE`` or ``NODE-0``,
``NODE-1``, …) and ``WORKBENCH_NODE=NODE`` in its environment. Every connection is mutual TLS
with the certificates ``up`` makes for the cluster (``workbench.cluster.tls``); encryption is
required. What was started is kept in a state file next to the cluster file, so ``down`` stops
all of it, on every node, and removes the keys.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.backends.local import ARROW_SYSTEM_POOL
from workbench.cluster.inventory import Cluster, Node, load_cluster
from workbench.cluster.processes import pid_alive, terminate
from workbench.cluster.ssh import bounded, run, run_sync, session
from workbench.cluster.tls import REQUIRE_ENCRYPTION_ENV, client_security, generate, member, node_identity, send_to_node, tls_dir
from workbench.errors import ClusterError, NodeUnreachable
from workbench.util.polling import poll

if TYPE_CHECKING:
    from distributed import Client, Security

DEATH_TIMEOUT = 60  # seconds a worker waits for a lost scheduler before exiting by itself


def state_path(cluster_file: str | os.PathLike[str]) -> Path:
    p = Path(cluster_file).resolve()
    return p.parent / f"{p.stem}.dask.json"


def logs_dir(cluster_file: str | os.PathLike[str]) -> Path:
    """Scheduler log and address file, kept after ``down`` for diagnosis."""
    return state_path(cluster_file).with_suffix(".logs")


def read_state(cluster_file: str | os.PathLike[str]) -> dict[str, Any] | None:
    try:
        return json.loads(state_path(cluster_file).read_text())
    except FileNotFoundError:
        return None


def is_up(cluster_file: str | os.PathLike[str]) -> bool:
    state = read_state(cluster_file)
    return bool(state) and pid_alive(state["scheduler_pid"])


def scheduler_address(cluster_file: str) -> str:
    """The running cluster's scheduler address, or a ``ClusterError`` saying how to start it."""
    state = read_state(cluster_file)
    if not state or not pid_alive(state["scheduler_pid"]):
        raise ClusterError(f"cluster is not up; run `workbench cluster up --cluster {cluster_file}`")
    return state["scheduler"]


def worker_names(cluster_file: str) -> dict[str, list[str]]:
    """Node name -> the Dask worker names started on it."""
    state = read_state(cluster_file) or {"nodes": {}}
    return {name: info["workers"] for name, info in state["nodes"].items()}


def live_worker_names(cluster_file: str, timeout: float = 10.0) -> dict[str, dict[str, Any]]:
    """Worker name -> the scheduler's info on it, for every worker connected now."""
    with _client(scheduler_address(cluster_file), timeout, client_security(cluster_file)) as client:
        return _live(client)


def _client(address: str, timeout: float, security: "Security") -> "Client":
    from distributed import Client

    try:
        return Client(address, timeout=timeout, set_as_default=False, security=security)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the cluster's Dask scheduler at {address}: {exc}") from None


def _live(client: "Client") -> dict[str, dict[str, Any]]:
    return {str(w.get("name")): w for w in client.scheduler_info(n_workers=-1)["workers"].values()}


def cluster_up(cluster_file: str | os.PathLike[str], *, timeout: float = 60.0,
               allow_missing: bool = False) -> dict[str, Any]:
    """Start the scheduler and every node's workers; wait until all workers joined. Returns the state.

    With ``allow_missing`` a node where workers cannot start is listed in ``state["missing"]``
    instead of failing the whole cluster (shards it holds run on their other replicas).
    """
    cluster = load_cluster(cluster_file)
    if is_up(cluster.path):
        raise ClusterError(f"the cluster is already up ({read_state(cluster.path)['scheduler']}); "
                           f"`workbench cluster down --cluster {cluster.path}` first")
    if read_state(cluster.path):  # a stale state (scheduler gone): stop what may be left of it
        _quietly_down(cluster.path)
    generate(cluster)  # a new CA and certificates for this run of the cluster
    state = {"cluster": str(cluster.path), "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "tls": str(tls_dir(cluster.path)), **_start_scheduler(cluster, timeout), "nodes": {}, "missing": {}}
    _write_state(cluster.path, state)
    try:
        results = run_sync(bounded(cluster.nodes, lambda n: _start_workers(cluster, n, state["scheduler"]),
                                      cluster.concurrency))
        for node, r in zip(cluster.nodes, results):
            if isinstance(r, BaseException):
                state["missing"][node.name] = _why(r)
            else:
                state["nodes"][node.name] = r
        _write_state(cluster.path, state)
        if state["missing"] and (not allow_missing or not state["nodes"]):
            raise ClusterError("could not start workers on " + "; ".join(f"{n}: {why}" for n, why in state["missing"].items()))
        _wait_for_workers(state, timeout, client_security(cluster.path))
    except BaseException:
        _quietly_down(cluster.path)
        raise
    return state


def start_node_workers(cluster_file: str | os.PathLike[str], node: str, *, timeout: float = 60.0) -> dict[str, Any]:
    """(Re)start one node's workers on the running cluster (after the node came back); waits until they joined."""
    cluster = load_cluster(cluster_file)
    state = read_state(cluster.path)
    if not state or not pid_alive(state["scheduler_pid"]):
        raise ClusterError(f"cluster is not up; run `workbench cluster up --cluster {cluster.path}`")
    info = run_sync(_start_workers(cluster, cluster.node(node), state["scheduler"]))
    state["nodes"][node] = info
    state["missing"].pop(node, None)
    _write_state(cluster.path, state)
    _wait_for_workers(state, timeout, client_security(cluster.path))
    return info


def _quietly_down(cluster_file: Path) -> None:
    try:
        cluster_down(cluster_file)
    except ClusterError:  # best effort; the error being handled is the one to report
        pass


def cluster_status(cluster_file: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Per node: the workers started and how many are connected to the scheduler now."""
    cluster = load_cluster(cluster_file)
    address = scheduler_address(str(cluster.path))
    state = read_state(cluster.path) or {}
    live = live_worker_names(str(cluster.path))
    rows = []
    for node in cluster.nodes:
        started = state.get("nodes", {}).get(node.name, {}).get("workers", [])
        connected = [w for w in started if w in live]
        rows.append({"node": node.name, "host": node.host, "workers": len(started), "connected": len(connected),
                     "tasks": sum(live[w].get("metrics", {}).get("executing", 0) for w in connected),
                     "scheduler": address, "dashboard": state.get("dashboard")})
    return rows


def cluster_down(cluster_file: str | os.PathLike[str]) -> list[str]:
    """Stop every worker and the scheduler the state file records; returns what was stopped."""
    path = Path(cluster_file).resolve()
    state = read_state(path)
    if state is None:
        raise ClusterError(f"no cluster was started with {path} (nothing to stop)")
    cluster = load_cluster(path)
    nodes = [cluster.node(n) for n in state["nodes"] if any(n == x.name for x in cluster.nodes)]
    results = run_sync(bounded(nodes, lambda n: _stop_workers(cluster, n, state["nodes"][n.name]["pid"]),
                                  cluster.concurrency))
    stopped = [f"workers on {n.name}" for n, r in zip(nodes, results) if not isinstance(r, BaseException)]
    terminate([state["scheduler_pid"]], group=True)
    stopped.append(f"scheduler {state['scheduler']}")
    state_path(path).unlink(missing_ok=True)
    shutil.rmtree(tls_dir(path), ignore_errors=True)  # this run's keys and certificates
    failures = [f"{n.name} (pid {state['nodes'][n.name]['pid']}): {_why(r)}"
                for n, r in zip(nodes, results) if isinstance(r, BaseException)]
    if failures:
        raise ClusterError("scheduler stopped, but could not stop the workers on " + "; ".join(failures)
                           + f" (they exit by themselves {DEATH_TIMEOUT} s after losing the scheduler)")
    return stopped


# -- pieces ------------------------------------------------------------------------------
def _start_scheduler(cluster: Cluster, timeout: float) -> dict[str, Any]:
    logdir = logs_dir(cluster.path)
    logdir.mkdir(exist_ok=True)
    info = logdir / "scheduler.json"
    info.unlink(missing_ok=True)
    log = open(logdir / "scheduler.log", "ab")
    from workbench.backends.local import dashboard_available

    dashboard = dashboard_available()  # the dashboard needs bokeh; on an ephemeral port (printed by `up`)
    proc = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--protocol", "tls", "--host", cluster.coordinator,
         "--port", str(cluster.scheduler_port), "--scheduler-file", str(info),
         *(["--dashboard", "--dashboard-address", f"{cluster.coordinator}:0"] if dashboard else ["--no-dashboard"]),
         *member(cluster.path, "scheduler").dask_args()],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        # a task whose worker dies comes back as KilledWorker at once: the run's retry policy decides
        env={**os.environ, **REQUIRE_ENCRYPTION_ENV, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"})
    log.close()
    def started() -> dict[str, Any] | None:
        if proc.poll() is not None:
            raise ClusterError(f"the Dask scheduler exited at start (address {cluster.coordinator}:"
                               f"{cluster.scheduler_port}); see {logdir / 'scheduler.log'}")
        try:
            facts = json.loads(info.read_text())
            port = facts.get("services", {}).get("dashboard")
            return {"scheduler": facts["address"], "scheduler_pid": proc.pid, "logs": str(logdir),
                    "dashboard": f"http://{cluster.coordinator}:{port}/status" if dashboard and port else None}
        except (FileNotFoundError, ValueError, KeyError):
            return None

    state = poll(started, timeout, interval=0.05)
    if state is not None:
        return state
    terminate([proc.pid], group=True)
    raise ClusterError(f"the Dask scheduler did not start within {timeout:g} s; see {logdir / 'scheduler.log'}")


async def _start_workers(cluster: Cluster, node: Node, scheduler: str) -> dict[str, Any]:
    """Launch one detached ``dask worker`` command (its own session) on the node; return pid and names."""
    logdir = f"{node.data_dir}/.workbench"
    log = f"{logdir}/dask-worker.log"
    cores = str(node.cores) if node.cores else "$(nproc)"
    variables = {"WORKBENCH_NODE": node.name, **ARROW_SYSTEM_POOL, **REQUIRE_ENCRYPTION_ENV}  # Arrow: as local workers
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in variables.items())
    async with session(cluster, node) as conn:
        tls = await send_to_node(conn, cluster, node)
        worker = shlex.join([node.python, "-m", "distributed.cli.dask_worker", scheduler, "--nthreads", "1",
                             "--name", node.name, "--no-dashboard", "--death-timeout", str(DEATH_TIMEOUT),
                             *tls.dask_args()])
        script = (f"n={cores}; mkdir -p {shlex.quote(logdir)} && "
                  f"{env} setsid {worker} --nworkers $n >{shlex.quote(log)} 2>&1 </dev/null & echo $! $n")
        out = await run(conn, node.name, ["sh", "-c", script])
    pid, n = (int(x) for x in out.split())
    names = [node.name] if n == 1 else [f"{node.name}-{i}" for i in range(n)]
    return {"pid": pid, "workers": names, "log": log, "host": node.host}


async def _stop_workers(cluster: Cluster, node: Node, pid: int) -> None:
    """TERM the worker command's process group, wait up to 15 s, then KILL what is left; remove its keys."""
    tls = shlex.quote(str(Path(str(node_identity(node).ca)).parent))
    script = (f"rm -rf {tls}; kill -TERM -{pid} 2>/dev/null || exit 0; i=0; "  # no `--`: dash's kill rejects it
              f"while kill -0 -{pid} 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i+1)); done; "
              f"kill -KILL -{pid} 2>/dev/null; exit 0")
    async with session(cluster, node) as conn:
        await run(conn, node.name, ["sh", "-c", script])


def _wait_for_workers(state: dict[str, Any], timeout: float, security: "Security") -> None:
    expected = {w: node for node, info in state["nodes"].items() for w in info["workers"]}
    with _client(state["scheduler"], timeout, security) as client:
        def missing() -> list[str]:
            live = _live(client)
            return sorted({node for w, node in expected.items() if w not in live})

        if poll(lambda: True if not missing() else None, timeout, interval=0.2):
            return
        late = missing()
        logs = ", ".join(f"{n}:{state['nodes'][n]['log']}" for n in late)
        raise ClusterError(f"workers on {', '.join(late)} did not join the scheduler "
                           f"{state['scheduler']} within {timeout:g} s (worker logs: {logs})")


def _why(exc: BaseException) -> str:
    if isinstance(exc, NodeUnreachable):
        return exc.reason
    return str(exc) or type(exc).__name__


def _write_state(cluster_file: Path, state: dict[str, Any]) -> None:
    path = state_path(cluster_file)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    os.replace(tmp, path)
