"""The page cache of a placed dataset on the cluster's nodes: drop it, measure what is resident.

Runs ``workbench/util/pagecache.py`` itself on each node over SSH (standard library only, so a node
needs nothing installed but Python), on the files the node reads: the shards the placement gives
it (``local``) or every shard under its shared root (``shared``; on NFS each client has its own
page cache of the files, the server's cache is not touched).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from workbench.cluster.inventory import Node, load_cluster
from workbench.cluster.ssh import bounded, raise_first, run, run_sync, session
from workbench.errors import ClusterError
from workbench.storage.manifest import Manifest

# Runs on the node: workbench/util/pagecache.py itself, then this request handler. REQUEST (argv) is
# {"paths": [...], "drop": bool}; prints {"resident", "bytes", "files", "error"} over the paths that exist.
SCRIPT = (Path(__file__).resolve().parent.parent / "util" / "pagecache.py").read_text() + r"""
def _request(argv):
    import json
    request = json.loads(argv[0])
    paths = [p for p in request["paths"] if os.path.isfile(p)]
    try:
        if request.get("drop"):
            drop(paths)
        cached, total = resident(paths)
        return {"resident": cached, "bytes": total, "files": len(paths), "error": None}
    except OSError as exc:
        return {"resident": None, "bytes": None, "files": len(paths), "error": str(exc)}
print(__import__("json").dumps(_request(sys.argv[1:])))
"""


class NodeFiles:
    """The placed dataset's files on ``nodes`` (all of the cluster's by default)."""

    def __init__(self, cluster_file: str, manifest: Manifest, nodes: Sequence[str] | None = None):
        self.cluster = load_cluster(cluster_file)
        placement = manifest.placement
        if not placement:
            raise ClusterError("the dataset is not placed on a cluster; run `workbench place` first")
        roots: dict[str, str] = placement["roots"]
        wanted = list(nodes) if nodes is not None else [n.name for n in self.cluster.nodes]
        self.paths: dict[str, list[str]] = {}
        for name in wanted:
            if name not in roots:
                continue
            held = [s for s in manifest.shards
                    if placement["mode"] == "shared" or name in placement["shards"].get(s.name, [])]
            self.paths[name] = [f"{roots[name]}/{rel}" for s in held for rel in (s.path, s.index_path)]

    def _ask(self, drop: bool) -> dict[str, dict[str, int]]:
        async def one(node: Node) -> dict[str, int]:
            request = json.dumps({"paths": self.paths[node.name], "drop": drop})
            async with session(self.cluster, node) as conn:
                out = json.loads(await run(conn, node.name, [node.python, "-c", SCRIPT, request]))
            if out["error"]:
                raise ClusterError(f"node {node.name!r}: cannot {'drop' if drop else 'inspect'} the page cache: "
                                   f"{out['error']}")
            return out

        nodes = [self.cluster.node(name) for name in self.paths]
        return dict(zip(self.paths, raise_first(run_sync(bounded(nodes, one, self.cluster.concurrency)))))

    def drop(self) -> None:
        """Evict the files from every node's page cache."""
        self._ask(True)

    def resident(self) -> float:
        """Share of the files' bytes (over all nodes) in the nodes' page caches."""
        found = self._ask(False).values()
        total = sum(r["bytes"] for r in found)
        return sum(r["resident"] for r in found) / total if total else 0.0
