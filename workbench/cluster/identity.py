"""Which cluster a placement belongs to, and that its node paths stay inside the nodes' directories.

``workbench place`` records ``cluster_id``: a digest of the cluster file's resolved path and of
every node's name, address, port, ``data_dir`` and host keys (from the cluster's known_hosts). A
testbed rebuilt with the same node names, or another cluster file, gets another id, so its nodes
are never sent tasks for shards they do not hold. Every node root a placement names must lie
inside that node's ``data_dir`` or ``shared_dir``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from workbench.cluster.inventory import Cluster
from workbench.errors import ClusterError
from workbench.storage.integrity import inside
from workbench.storage.manifest import Manifest


def cluster_id(cluster: Cluster) -> str:
    """A digest naming this cluster: its file's path and its nodes (addresses and host keys)."""
    h = hashlib.sha256(str(cluster.path).encode())
    known = _known_hosts(cluster)
    for node in sorted(cluster.nodes, key=lambda n: n.name):
        keys = []
        if known is not None:
            keys = sorted(k.export_public_key().decode().strip() for k in known.match(node.host, "", node.port)[0])
        h.update(json.dumps([node.name, node.host, node.port, node.data_dir, node.shared_dir, keys]).encode())
    return h.hexdigest()[:32]


def _known_hosts(cluster: Cluster):  # type: ignore[no-untyped-def]
    import asyncssh

    try:
        return asyncssh.read_known_hosts(str(cluster.known_hosts))
    except Exception:  # absent or unreadable: the id has no host keys (connecting fails later, clearly)
        return None


def check_placed_here(manifest: Manifest, cluster: Cluster, dataset: Path | str | None = None) -> None:
    """Refuse a placement made for another cluster, or one naming node paths outside the nodes' directories."""
    placement = manifest.placement
    where = f"--dataset {dataset} " if dataset else ""
    if not placement:
        raise ClusterError(f"the dataset is not placed on a cluster; run `workbench place {where or '--dataset DIR '}"
                           f"--cluster {cluster.path}`")
    if placement.get("cluster_id") != cluster_id(cluster):
        raise ClusterError(f"the dataset is not placed on this cluster: run workbench place {where}--cluster {cluster.path} "
                           f"(its placement is for {placement.get('cluster') or 'another cluster'}, or the nodes changed)")
    nodes = {n.name: n for n in cluster.nodes}
    for key in ("roots", "shared_roots"):
        for name, root in (placement.get(key) or {}).items():
            node = nodes.get(name)
            if node is None:
                raise ClusterError(f"placement names node {name!r}, which is not in {cluster.path}; run workbench place")
            bases = [node.data_dir] + ([node.shared_dir] if node.shared_dir else [])
            if not any(inside(base, root) for base in bases):
                raise ClusterError(f"placement: node {name!r} root {root!r} is outside its data_dir "
                                   f"{' and shared_dir '.join(bases)} (refused)")
