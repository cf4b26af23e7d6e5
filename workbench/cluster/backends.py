"""Backends across a cluster file's nodes: Dask tasks follow shard placement; Docker gets one
engine per node and runs each shard on a node holding it (``--cluster FILE``). A shard attempt
that fails runs again on another node holding it where there is one.

The backends themselves know nothing of cluster files: this layer gives them their engines or
scheduler address and says which worker or node may run each shard.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from workbench.backends import Backend
from workbench.backends.dask import DaskBackend, Placed
from workbench.backends.docker import DockerBackend
from workbench.backends.retry import Tries
from workbench.containers.pool import Engine, check_readable, open_engine
from workbench.errors import BackendError, ClusterError, WorkbenchError

if TYPE_CHECKING:
    from workbench.storage.manifest import Manifest


class ClusterDaskBackend(DaskBackend):
    """The cluster's Dask scheduler (``workbench cluster up``); each shard on workers of nodes holding it
    (``nodes``: only on the workers of these nodes, e.g. to measure 1..N nodes of one running cluster)."""

    def __init__(self, cluster: str, workers: int | None = None, scheduler: str | None = None,
                 nodes: tuple[str, ...] | None = None):
        from workbench.cluster.daskcluster import scheduler_address
        from workbench.cluster.inventory import load_cluster
        from workbench.cluster.tls import client_security

        self.cluster = str(load_cluster(cluster).path)  # a missing or broken file says so first
        self.nodes = tuple(nodes) if nodes is not None else None
        super().__init__(workers, scheduler=scheduler or scheduler_address(self.cluster),
                         security=client_security(self.cluster))
        if self.nodes is not None and not workers:
            from workbench.cluster.locality import live_node_workers

            self.workers = sum(len(w) for w in live_node_workers(self.cluster, self.nodes).values()) or 1

    def placed_tasks(self, root: Path, manifest: "Manifest") -> list[Placed]:
        from workbench.cluster.locality import locality_tasks

        return locality_tasks(root, manifest, self.cluster, self.live_workers(), exclude=self.left_out())

    def replace(self, root: Path, manifest: "Manifest", tries: Tries, workers: list[str] | None) -> Placed:
        """A failed shard's next attempt: on live workers of another node holding it (any holder when
        none is left), its dataset root as that node sees it; none live -> ``ClusterError``."""
        from dataclasses import replace

        from workbench.cluster.daskcluster import worker_names
        from workbench.cluster.locality import locality_tasks

        failed = set(tries.failed_nodes) | {node for node, names in worker_names(self.cluster).items()
                                            if set(names) & set(tries.failed_workers)}
        live = self.live_workers()
        one = replace(manifest, shards=[tries.task.shard])
        try:
            [placed] = locality_tasks(root, one, self.cluster, live, exclude=failed | self.left_out())
        except ClusterError:  # no other node holding it is up: those that failed it, if they are back
            [placed] = locality_tasks(root, one, self.cluster, live, exclude=self.left_out())
        return placed

    def live_workers(self) -> set[str]:
        """Names of the workers connected to the scheduler now."""
        return {str(w.get("name")) for w in self.client.scheduler_info(n_workers=-1)["workers"].values()}

    def left_out(self) -> frozenset[str]:
        """The cluster's nodes this backend must not use (those not in ``nodes``)."""
        if self.nodes is None:
            return frozenset()
        from workbench.cluster.inventory import load_cluster

        return frozenset(n.name for n in load_cluster(self.cluster).nodes) - set(self.nodes)

    def describe(self) -> str:
        return super().describe() + (f" on {','.join(self.nodes)}" if self.nodes is not None else "")

    def dashboard_link(self) -> str | None:
        """The dashboard `cluster up` started (None when bokeh was not installed)."""
        from workbench.cluster.daskcluster import read_state

        return (read_state(self.cluster) or {}).get("dashboard")


class ClusterDockerBackend(DockerBackend):
    """One engine per node with a ``docker`` URL; each shard attempt on a free slot of a node holding it."""

    def __init__(self, cluster: str, workers: int | None = None, docker_host: str | None = None,
                 image: str | None = None, mode: str = "pool", memory: str | None = None, insecure_engine: bool = False,
                 platform: str | None = None):
        if docker_host:
            raise BackendError("--docker-host does not apply with --cluster: each node's engine is its `docker` URL")
        self.cluster = str(cluster)
        super().__init__(workers, image=image, mode=mode, memory=memory, engines=node_engines(self.cluster, insecure_engine),
                         platform=platform)

    def where(self, engine: Engine) -> tuple[str, str]:
        return (f"the Docker engine of node {engine.node!r} ({engine.url})",
                f"workbench images build{{only}} --docker-host {engine.url}")

    def candidates(self, root: Path, manifest: "Manifest") -> dict[str, list[tuple[Engine, str]]]:
        """Each shard's nodes holding it (their engines), with its dataset root as those nodes see it."""
        from workbench.cluster.locality import docker_targets

        chosen = {task.shard.name: [(self.engines[n.name], task.root) for n in nodes]
                  for task, nodes in docker_targets(Path(root), manifest, self.cluster)}
        for engine, node_root in {o for options in chosen.values() for o in options}:
            if engine.url.startswith("unix://") and Path(node_root).is_dir():  # this host's engine: check here
                check_readable(Path(node_root), manifest)
        return chosen


def node_engines(cluster_file: str, insecure: bool = False) -> list[Engine]:
    """A client for the engine of every node that names one; unreachable -> BackendError naming the node."""
    from workbench.cluster.inventory import load_cluster

    cluster = load_cluster(cluster_file)
    nodes = [n for n in cluster.nodes if n.docker]
    if not nodes:
        raise BackendError(f"no node of {cluster.path} has a `docker` engine URL")
    engines: list[Engine] = []
    try:
        for node in nodes:
            try:
                engines.append(open_engine(node.name, node.docker, node.cores, insecure))
            except BackendError as exc:
                raise BackendError(f"node {node.name!r}: {exc}") from None
    except BaseException:
        for engine in engines:
            engine.client.close()
        raise
    return engines


CLUSTER_BACKENDS: dict[str, type[Backend]] = {"dask": ClusterDaskBackend, "docker": ClusterDockerBackend}


def cluster_backend_class(name: str) -> type[Backend]:
    """The backend ``name`` across a cluster file's nodes."""
    try:
        return CLUSTER_BACKENDS[name]
    except KeyError:
        raise WorkbenchError(f"--cluster needs --backend dask or --backend docker, not {name!r}") from None
