"""``workbench verify --cluster``: the sha256 of every placed copy, computed on the node holding it.

Each node holding copies hashes them itself (the script ``place`` uses, over one SSH connection
per node, nodes in parallel); only digests travel. A copy that is missing, differs, or resolves
out of the node's dataset directory (a symbolic link) is a ``Problem`` naming shard and node.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from workbench.cluster.identity import check_placed_here
from workbench.cluster.inventory import Node, load_cluster
from workbench.cluster.placement import on_all_nodes, remote_hashes
from workbench.cluster.ssh import session
from workbench.storage.integrity import Expected, Problem, expected_files, sha256_file
from workbench.storage.manifest import Manifest

REMOTE_PROBLEMS = {None: "missing", "outside": "leads out of the node's dataset directory (symbolic link; refused)",
                   "unreadable": "unreadable"}


def node_copies(directory: Path, manifest: Manifest) -> dict[str, dict[str, list[Expected]]]:
    """Node -> node-side dataset root -> the files (with digests) the placement puts there."""
    placement: dict[str, Any] = manifest.placement or {}
    files: list[Expected] = []
    for f in expected_files(directory, manifest):
        if f.built_from is not None:  # an index file: `place` copies those that exist here
            local = directory / f.rel
            if not local.exists():
                continue
            if f.sha256 is None:  # no digest recorded: the local copy is the reference
                f = Expected(f.shard, f.rel, sha256_file(local), f.built_from)
        files.append(f)
    copies: dict[str, dict[str, list[Expected]]] = {}
    held = placement.get("shards") or {}
    for node, root in (placement.get("roots") or {}).items():
        mine = files if placement.get("mode") == "shared" else [f for f in files if node in held.get(f.shard, [])]
        if mine:
            copies.setdefault(node, {})[root] = mine
    for node, root in (placement.get("shared_roots") or {}).items():
        copies.setdefault(node, {})[root] = files
    return copies


def verify_nodes(directory: Path, manifest: Manifest, cluster_file: "str | os.PathLike[str]") -> tuple[int, list[str], list[Problem]]:
    """Hash every placed copy on its node; returns (files checked, nodes, problems)."""
    cluster = load_cluster(cluster_file)
    check_placed_here(manifest, cluster, directory)
    copies = node_copies(directory, manifest)

    async def one(node: Node) -> list[Problem]:
        found: list[Problem] = []
        async with session(cluster, node) as conn:
            for root, files in copies[node.name].items():
                have = await remote_hashes(conn, node, root, [f.rel for f in files])
                for f in files:
                    got = have.get(f.rel)
                    if got != f.sha256:
                        found.append(Problem(f.shard, f"{root}/{f.rel}",
                                             REMOTE_PROBLEMS.get(got, "sha256 mismatch"), node.name))
        return found

    nodes = [n for n in cluster.nodes if n.name in copies]
    results = on_all_nodes(nodes, one, cluster, what="verify")
    checked = sum(len(files) for roots in copies.values() for files in roots.values())
    return checked, [n.name for n in nodes], [p for found in results for p in found]
