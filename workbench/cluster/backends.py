"""Backends across a cluster file's nodes: Dask tasks follow shard placement; Docker gets one
engine per node and sends each shard to a node holding it (``--cluster FILE``).

The backends themselves know nothing of cluster files: this layer gives them their engines or
scheduler address and says which worker or node may run each shard.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from workbench.backends import Backend
from workbench.backends.dask import DaskBackend, Placed
from workbench.backends.docker import DockerBackend
from workbench.containers.pool import Engine, check_readable, open_engine
from workbench.errors import BackendError, WorkbenchError

if TYPE_CHECKING:
    from workbench.storage.manifest import Manifest


class ClusterDaskBackend(DaskBackend):
    """The cluster's Dask scheduler (``workbench cluster up``); each shard on workers of nodes holding it."""

    def __init__(self, cluster: str, workers: int | None = None, scheduler: str | None = None):
        from workbench.cluster.daskcluster import scheduler_address
        from workbench.cluster.inventory import load_cluster
        from workbench.cluster.tls import client_security

        self.cluster = str(load_cluster(cluster).path)  # a missing or broken file says so first
        super().__init__(workers, scheduler=scheduler or scheduler_address(self.cluster),
                         security=client_security(self.cluster))

    def placed_tasks(self, root: Path, manifest: "Manifest") -> list[Placed]:
        from workbench.cluster.locality import locality_tasks

        return locality_tasks(root, manifest, self.cluster)


class ClusterDockerBackend(DockerBackend):
    """One engine per node with a ``docker`` URL; each shard to the least loaded node holding it."""

    def __init__(self, cluster: str, workers: int | None = None, docker_host: str | None = None,
                 image: str | None = None, mode: str = "pool", memory: str | None = None, insecure_engine: bool = False):
        if docker_host:
            raise BackendError("--docker-host does not apply with --cluster: each node's engine is its `docker` URL")
        self.cluster = str(cluster)
        super().__init__(workers, image=image, mode=mode, memory=memory, engines=node_engines(self.cluster, insecure_engine))

    def where(self, engine: Engine) -> tuple[str, str]:
        return (f"the Docker engine of node {engine.node!r} ({engine.url})",
                f"workbench images build{{only}} --docker-host {engine.url}")

    def targets(self, root: Path, manifest: "Manifest") -> dict[str, tuple[Engine, str]]:
        """Each shard on one node holding it, the least loaded by bytes per core (largest shards first)."""
        from workbench.cluster.locality import docker_targets

        load = dict.fromkeys(self.engines, 0)
        chosen: dict[str, tuple[Engine, str]] = {}
        for task, nodes in docker_targets(Path(root), manifest, self.cluster):
            engines = [self.engines[n.name] for n in nodes]
            best = min(engines, key=lambda e: (load[e.node] + task.shard.bytes) / e.cores)
            load[best.node] += task.shard.bytes
            chosen[task.shard.name] = (best, task.root)
        for engine, node_root in set(chosen.values()):
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
