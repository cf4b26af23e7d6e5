"""``workbench place``: put a dataset's shards where the nodes read them.

``local``: copy shards (and index files) over SFTP into each node's ``data_dir``, balanced by
bytes, ``replicas`` copies on distinct nodes, sha256-verified on the node; re-running copies only
what is missing or different. ``shared``: every node must see the same shards under its
``shared_dir`` (an NFS mount); wait for the mount with a bounded retry, then verify checksums.
Either way the placement is recorded in the dataset's manifest for data-local scheduling; a
``local`` placement after a ``shared`` one keeps the shared roots as the fallback.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from workbench.cluster.identity import cluster_id
from workbench.cluster.inventory import Cluster, Node, load_cluster
from workbench.cluster.ssh import bounded, raise_first, run, run_sync, session
from workbench.errors import ClusterError
from workbench.storage.integrity import sha256_file
from workbench.storage.manifest import Manifest, ShardInfo, read_manifest, write_manifest

# Runs on the node: sha256 of each relative path under ROOT, read from stdin; null when absent,
# "outside" when it resolves out of ROOT (a symbolic link), "unreadable" on another error.
HASH_SCRIPT = r"""
import hashlib, json, os, sys
root = sys.argv[1]
base = os.path.realpath(root)
out = {}
for rel in json.load(sys.stdin):
    path = os.path.join(root, rel)
    if os.path.commonpath([base, os.path.realpath(path)]) != base:
        out[rel] = "outside"
        continue
    try:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        out[rel] = h.hexdigest()
    except FileNotFoundError:
        out[rel] = None
    except OSError:
        out[rel] = "unreadable"
print(json.dumps(out))
"""


@dataclass
class NodePlacement:
    """What ``place`` did on one node."""

    node: str
    root: str
    files: int
    copied: int = 0
    bytes_copied: int = 0
    verified: int = 0
    seconds: float = 0.0


@dataclass(frozen=True)
class PlacedFile:
    rel: str
    sha256: str
    size: int


def dataset_id(directory: Path, manifest: Manifest) -> str:
    """A node-side directory name: the dataset's name plus a digest of its shard checksums."""
    digest = hashlib.sha256("".join(s.sha256 for s in manifest.shards).encode()).hexdigest()[:12]
    return f"{directory.name}-{digest}"


def balance(shards: list[ShardInfo], nodes: list[str], replicas: int) -> dict[str, list[str]]:
    """Assign each shard to ``replicas`` distinct nodes, largest shards first onto the least-loaded nodes."""
    if not 1 <= replicas <= len(nodes):
        raise ClusterError(f"--replicas must be between 1 and the number of nodes ({len(nodes)}), not {replicas}")
    heap = [(0, i, n) for i, n in enumerate(nodes)]  # (bytes so far, cluster-file order, node)
    placed: dict[str, list[str]] = {}
    for shard in sorted(shards, key=lambda s: (-s.bytes, s.name)):
        chosen = [heapq.heappop(heap) for _ in range(replicas)]
        placed[shard.name] = [n for _, _, n in chosen]
        for load, i, n in chosen:
            heapq.heappush(heap, (load + shard.bytes, i, n))
    return {s.name: placed[s.name] for s in shards}


def place(dataset: str | Path, cluster_file: str | Path, mode: Literal["local", "shared"] = "local", *,
          replicas: int = 1, mount_timeout: float = 60.0, mount_interval: float = 2.0) -> list[NodePlacement]:
    """Place the dataset on the cluster and record it in the manifest; one report per node used."""
    directory = Path(dataset).resolve()
    manifest = read_manifest(directory)
    cluster = load_cluster(cluster_file)
    if mode == "local":
        reports, record = _place_local(directory, manifest, cluster, replicas)
    elif mode == "shared":
        if replicas != 1:
            raise ClusterError("--replicas applies to --mode local (a shared directory is one copy)")
        reports, record = _place_shared(directory, manifest, cluster, mount_timeout, mount_interval)
    else:
        raise ClusterError(f"--mode must be local or shared, not {mode!r}")
    previous = manifest.placement or {}
    ident = cluster_id(cluster)
    if mode == "local" and previous.get("cluster_id") == ident:
        # a verified shared copy stays usable when every node holding a shard is down
        shared = previous["roots"] if previous.get("mode") == "shared" else previous.get("shared_roots")
        if shared:
            record["shared_roots"] = shared
    manifest.placement = {"mode": mode, "cluster": str(cluster.path), "cluster_id": ident,
                          "placed": datetime.now(timezone.utc).isoformat(timespec="seconds"), **record}
    write_manifest(directory, manifest)
    return reports


def _files(directory: Path, shard: ShardInfo) -> list[PlacedFile]:
    """A shard's file plus its index file when one was built."""
    files = [PlacedFile(shard.path, shard.sha256, shard.bytes)]
    index = directory / shard.index_path
    if index.exists():
        files.append(PlacedFile(shard.index_path, sha256_file(index), index.stat().st_size))
    return files


def _place_local(directory: Path, manifest: Manifest, cluster: Cluster,
                 replicas: int) -> tuple[list[NodePlacement], dict[str, Any]]:
    assignment = balance(manifest.shards, [n.name for n in cluster.nodes], replicas)
    ident = dataset_id(directory, manifest)
    wanted: dict[str, list[PlacedFile]] = {n.name: [] for n in cluster.nodes}
    for shard in manifest.shards:
        files = _files(directory, shard)
        for node in assignment[shard.name]:
            wanted[node].extend(files)
    nodes = [n for n in cluster.nodes if wanted[n.name]]
    roots = {n.name: f"{n.data_dir}/{ident}" for n in nodes}

    async def one(node: Node) -> NodePlacement:
        return await _copy_to_node(cluster, node, directory, roots[node.name], wanted[node.name])

    reports = on_all_nodes(nodes, one, cluster)
    return reports, {"replicas": replicas, "dataset_id": ident, "roots": roots, "shards": assignment}


async def _copy_to_node(cluster: Cluster, node: Node, directory: Path, root: str,
                        files: list[PlacedFile]) -> NodePlacement:
    start = time.perf_counter()
    report = NodePlacement(node.name, root, len(files))
    async with session(cluster, node) as conn:
        have = await remote_hashes(conn, node, root, [f.rel for f in files])
        missing = [f for f in files if have.get(f.rel) != f.sha256]
        if missing:
            async with conn.start_sftp_client() as sftp:
                for parent in sorted({str(Path(root, f.rel).parent) for f in missing}):
                    await sftp.makedirs(parent, exist_ok=True)
                for f in missing:
                    target = f"{root}/{f.rel}"
                    await sftp.put(str(directory / f.rel), target + ".part")
                    await sftp.posix_rename(target + ".part", target)
                    report.copied += 1
                    report.bytes_copied += f.size
            after = await remote_hashes(conn, node, root, [f.rel for f in missing])
            bad = [f.rel for f in missing if after.get(f.rel) != f.sha256]
            if bad:
                raise ClusterError(f"node {node.name!r}: checksum mismatch after copying {bad[0]} to {root}")
    report.verified = len(files)
    report.seconds = time.perf_counter() - start
    return report


def _place_shared(directory: Path, manifest: Manifest, cluster: Cluster, timeout: float,
                  interval: float) -> tuple[list[NodePlacement], dict[str, Any]]:
    if timeout < 0 or interval <= 0:
        raise ClusterError("--mount-timeout must be >= 0 and --mount-interval > 0")
    lacking = [n.name for n in cluster.nodes if not n.shared_dir]
    if lacking:
        raise ClusterError(f"--mode shared needs `shared_dir` on every node; missing on {', '.join(lacking)}")
    files = [f for shard in manifest.shards for f in _files(directory, shard)]
    roots = {n.name: f"{n.shared_dir}/{directory.name}" for n in cluster.nodes}

    async def one(node: Node) -> NodePlacement:
        start = time.perf_counter()
        root = roots[node.name]
        async with session(cluster, node) as conn:
            await _wait_for(conn, node, f"{root}/manifest.json", timeout, interval)
            have = await remote_hashes(conn, node, root, [f.rel for f in files])
        for f in files:
            if have.get(f.rel) is None:
                raise ClusterError(f"node {node.name!r}: {root}/{f.rel} is missing from the shared directory")
            if have[f.rel] != f.sha256:
                raise ClusterError(f"node {node.name!r}: {root}/{f.rel} differs from the dataset (checksum mismatch)")
        return NodePlacement(node.name, root, len(files), verified=len(files), seconds=time.perf_counter() - start)

    reports = on_all_nodes(list(cluster.nodes), one, cluster)
    return reports, {"roots": roots, "shards": None}


async def _wait_for(conn: Any, node: Node, path: str, timeout: float, interval: float) -> None:
    """Poll until ``path`` exists on the node (its NFS mount came up), at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    async with conn.start_sftp_client() as sftp:
        while not await sftp.exists(path):
            if time.monotonic() >= deadline:
                raise ClusterError(f"node {node.name!r}: {path} did not appear within {timeout:g} s "
                                   f"(is shared_dir mounted and the dataset in it?)")
            await asyncio.sleep(min(interval, max(deadline - time.monotonic(), 0.0)))


async def remote_hashes(conn: Any, node: Node, root: str, rels: list[str]) -> dict[str, str | None]:
    out = await run(conn, node.name, [node.python, "-c", HASH_SCRIPT, root], input=json.dumps(rels))
    return json.loads(out)


def on_all_nodes(nodes: list[Node], fn: Any, cluster: Cluster, what: str = "placement") -> list[Any]:
    """Run ``fn`` on every node with bounded fan-out; report every failing node in one error."""
    async def guarded(node: Node) -> Any:
        try:
            return await fn(node)
        except ClusterError:
            raise
        except Exception as exc:  # SFTP or local I/O failure: name the node, keep one line
            raise ClusterError(f"node {node.name!r}: {type(exc).__name__}: {exc}") from None

    results = run_sync(bounded(nodes, guarded, cluster.concurrency))
    failures = [str(r) for r in results if isinstance(r, BaseException)]
    if len(failures) > 1:
        raise ClusterError(f"{what} failed on {len(failures)} nodes: " + "; ".join(failures))
    return raise_first(results)


def report_dicts(reports: list[NodePlacement]) -> list[dict[str, Any]]:
    return [asdict(r) for r in reports]
