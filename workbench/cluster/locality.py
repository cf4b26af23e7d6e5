"""Data locality: which node(s) may run each shard task, and where the shard lives there.

A shard placed with ``workbench place --mode local`` runs on a worker of a node holding a
replica (any live replica: a node that is down is skipped), else — when the dataset was also
verified in ``shared_dir`` — on a node reading the shared copy; a ``shared`` dataset runs
anywhere. Tasks carry the dataset directory *as the chosen nodes see it*; replicas whose nodes use
different ``data_dir`` paths are grouped so a task's ``root`` is right on every worker it may run on.
Shard data never travels through the scheduler — only results do.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from workbench.backends.base import ordered_for_balance
from workbench.cluster.identity import check_placed_here
from workbench.cluster.inventory import Cluster, Node, load_cluster
from workbench.errors import ClusterError
from workbench.jobs.base import ShardTask
from workbench.storage.manifest import Manifest, ShardInfo


def shard_holders(manifest: Manifest, cluster: Cluster, usable: set[str]) -> list[tuple[ShardInfo, str, list[str]]]:
    """For each shard (largest first): the node-side dataset root and the usable nodes that hold it there."""
    check_placed_here(manifest, cluster)
    placement = manifest.placement
    placed_roots: dict[str, str] = placement.get("roots") or {}
    known = {n.name for n in cluster.nodes}
    fallback: dict[str, str] = placement.get("shared_roots") or {}
    load = {n: 0.0 for n in {*placed_roots, *fallback}}
    chosen = []
    for shard in ordered_for_balance(manifest.shards):
        roots = placed_roots
        holders = list(roots) if placement["mode"] == "shared" else placement["shards"].get(shard.name, [])
        live = [n for n in holders if n in usable and n in known]
        if not live and fallback:  # every replica's node is down: read the shared copy instead
            roots, holders = fallback, list(fallback)
            live = [n for n in holders if n in usable and n in known]
        if not live:
            raise ClusterError(f"shard {shard.name}: none of the nodes holding it ({', '.join(holders) or 'none'}) "
                               f"is available; start them (`workbench cluster up`) or re-run `workbench place`")
        groups: dict[str, list[str]] = {}
        for n in live:
            groups.setdefault(roots[n], []).append(n)
        root, nodes = max(groups.items(), key=lambda g: (len(g[1]), -sum(load[n] for n in g[1]) / len(g[1])))
        for n in nodes:
            load[n] += shard.bytes / len(nodes)
        chosen.append((shard, root, nodes))
    return chosen


def live_node_workers(cluster_file: str, only: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Node name -> its Dask workers connected now (``only``: just these nodes; those with none are left out)."""
    from workbench.cluster.daskcluster import live_worker_names, worker_names

    live = live_worker_names(cluster_file)
    by_node = {node: [w for w in names if w in live] for node, names in worker_names(cluster_file).items()
               if only is None or node in only}
    return {node: names for node, names in by_node.items() if names}


def locality_tasks(root: Path, manifest: Manifest, cluster_file: str, live: set[str],
                   exclude: set[str] | frozenset[str] = frozenset()) -> list[tuple[ShardTask, list[str] | None]]:
    """Shard tasks for the cluster's Dask workers, each restricted to the ``live`` workers of nodes
    holding the shard (but the nodes in ``exclude``)."""
    from workbench.cluster.daskcluster import worker_names

    cluster = load_cluster(cluster_file)
    by_node = {node: [w for w in names if w in live] for node, names in worker_names(cluster_file).items()}
    usable = {node for node, names in by_node.items() if names and node not in exclude}
    tasks: list[tuple[ShardTask, list[str] | None]] = []
    for shard, node_root, nodes in shard_holders(manifest, cluster, usable):
        anywhere = manifest.placement["mode"] == "shared" and set(nodes) == usable and not exclude
        workers = None if anywhere else [w for n in nodes for w in by_node[n]]
        tasks.append((ShardTask(node_root, shard), workers))
    return tasks


def docker_targets(root: Path, manifest: Manifest, cluster_file: str) -> list[tuple[ShardTask, list[Node]]]:
    """For the docker backend across nodes: each shard task with the nodes (and their engines) holding it."""
    cluster = load_cluster(cluster_file)
    engines = {n.name: n for n in cluster.nodes if n.docker}
    if not engines:
        raise ClusterError(f"no node of {cluster.path} has a `docker` engine URL")
    return [(ShardTask(node_root, shard), [engines[n] for n in nodes])
            for shard, node_root, nodes in shard_holders(manifest, cluster, set(engines))]
