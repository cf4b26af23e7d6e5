"""``workbench bench scaling --cluster FILE --nodes 1,2,3``: throughput on 1..N nodes of a cluster,
with the shards on each node's own disk (``local``) and on storage every node shares (``shared``).

One Dask cluster (``workbench cluster up``; started here when it is not up, stopped afterwards)
runs every point; a point with k nodes restricts the shard tasks to the workers of the cluster
file's first k nodes. For ``local`` the dataset is placed on every node (one replica per node,
so any k nodes hold every shard and only the node count changes); for ``shared`` it must already
be in each node's ``shared_dir`` (an NFS export on real hardware). The dataset's placement in
its manifest is restored afterwards.

Figures: ``MB/s`` is the dataset's bytes over the median wall time of a run (coordinator's
clock, scheduling and result transfer included); ``MB/s per node`` is that divided by the node
count; ``speedup`` and ``efficiency`` compare with the smallest node count of the same storage
and cache state; ``busiest node`` is the largest share of the bytes one node read.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.api import Dataset
from workbench.bench.measure import CACHES, Cache, check_cold_possible, medians, repeated_runs
from workbench.errors import ClusterError
from workbench.jobs.base import Job
from workbench.runner.stats import RunStats

STORAGES = ("local", "shared")


@dataclass
class NodeRow:
    storage: str
    nodes: int
    workers: int
    wall_s: float
    mb_per_s: float
    mb_per_s_node: float
    speedup: float
    efficiency: float
    hits: int
    cache: str = "warm"
    resident: float | None = None
    busiest_share: float = 0.0  # largest share of the dataset's bytes read by one node (median of runs)
    node_mb_per_s: dict[str, float] = field(default_factory=dict)  # per node: its bytes / wall (median)


def default_storages(cluster_file: str) -> list[str]:
    """``local``, plus ``shared`` when every node declares a ``shared_dir``."""
    from workbench.cluster.inventory import load_cluster

    cluster = load_cluster(cluster_file)
    return ["local", "shared"] if all(n.shared_dir for n in cluster.nodes) else ["local"]


def node_scaling(dataset: Dataset, job: Job, cluster_file: str, counts: Sequence[int], *,
                 storages: Sequence[str] = STORAGES, repeat: int = 3, cold: bool = False,
                 on_run: Callable[[str, int, RunStats], None] | None = None
                 ) -> tuple[list[NodeRow], list[dict[str, Any]]]:
    """Run the experiment; returns the rows (storage, node count, cache state) and every raw run."""
    from workbench.backends import release
    from workbench.cluster.daskcluster import cluster_down, cluster_up, is_up
    from workbench.cluster.inventory import load_cluster
    from workbench.cluster.pagecache import NodeFiles
    from workbench.cluster.placement import place
    from workbench.runner import open_backend
    from workbench.storage.manifest import read_manifest, write_manifest

    cluster = load_cluster(cluster_file)
    names = [n.name for n in cluster.nodes]
    if not counts or min(counts) < 1 or max(counts) > len(names):
        raise ClusterError(f"--nodes must be between 1 and {len(names)} (the nodes of {cluster.path})")
    unknown = set(storages) - set(STORAGES)
    if unknown or not storages:
        raise ClusterError(f"--storage must list local and/or shared, not {','.join(storages)}")
    if cold:
        check_cold_possible()
    caches: tuple[Cache, ...] = CACHES if cold else ("warm",)
    saved = copy.deepcopy(dataset.manifest.placement)
    started = not is_up(cluster.path)
    if started:
        cluster_up(cluster.path, timeout=120)
    raw: list[dict[str, Any]] = []
    rows: list[NodeRow] = []
    try:
        for storage in storages:
            place(dataset.directory, cluster.path, storage,  # type: ignore[arg-type]
                  replicas=len(names) if storage == "local" else 1, mount_timeout=0)
            dataset.reload()
            points: dict[tuple[int, str], NodeRow] = {}
            for k in counts:
                only = tuple(names[:k])
                options: dict[str, Any] = {"cluster": str(cluster.path), "nodes": only}
                label = f"{storage} nodes={k}"
                runs = repeated_runs(dataset, job, repeat,
                                     (lambda cache, i, s, label=label: on_run(f"{label} {cache}", i, s)) if on_run else None,
                                     caches=caches, files=NodeFiles(str(cluster.path), dataset.manifest, only),
                                     backend="dask", **options)
                backend = open_backend("dask", **options)
                workers = backend.workers
                release(backend)
                raw += [m.record(storage=storage, nodes=k, node_names=list(only), repeat=i % repeat)
                        for i, m in enumerate(runs)]
                for cache in caches:
                    mine = [m for m in runs if m.cache == cache]
                    points[k, cache] = _row(dataset, storage, k, workers, cache, mine)
            for k in counts:
                for cache in caches:
                    row, base = points[k, cache], points[counts[0], cache]
                    row.speedup = base.wall_s / row.wall_s if row.wall_s else 0.0
                    row.efficiency = row.speedup * counts[0] / k
                    rows.append(row)
    finally:
        manifest = read_manifest(dataset.directory)
        manifest.placement = saved
        write_manifest(dataset.directory, manifest)
        dataset.reload()
        if started:
            cluster_down(cluster.path)
    return rows, raw


def _row(dataset: Dataset, storage: str, k: int, workers: int, cache: str, runs: list[Any]) -> NodeRow:
    import statistics

    wall, _cpu, hits, resident = medians(runs)
    total = dataset.manifest.bytes
    per_node: dict[str, list[float]] = {}
    shares = []
    for m in runs:
        read: dict[str, int] = {}
        for shard in m.stats.shards:
            read[shard["node"]] = read.get(shard["node"], 0) + shard["bytes"]
        for node, nbytes in read.items():
            per_node.setdefault(node, []).append(nbytes / 1e6 / m.stats.seconds if m.stats.seconds else 0.0)
        shares.append(max(read.values()) / total if total and read else 0.0)
    mb_s = total / 1e6 / wall if wall else 0.0
    return NodeRow(storage, k, workers, wall, mb_s, mb_s / k, 0.0, 0.0, hits, cache,
                   None if resident != resident else resident, statistics.median(shares) if shares else 0.0,
                   {n: statistics.median(v) for n, v in sorted(per_node.items())})


def figure(rows: list[NodeRow | dict[str, Any]], title: str) -> Any:
    """MB/s and MB/s per node against the node count, one line per storage and cache state."""
    from workbench.bench.charts import line_chart, new_figure

    rows_d = [r if isinstance(r, dict) else r.__dict__ for r in rows]
    xs = sorted({r["nodes"] for r in rows_d})
    keys = list(dict.fromkeys((r["storage"], r.get("cache", "warm")) for r in rows_d))
    by = {(r["storage"], r.get("cache", "warm"), r["nodes"]): r for r in rows_d}
    name = {key: f"{key[0]} {key[1]}" if len({c for _, c in keys}) > 1 else key[0] for key in keys}

    def series(metric: str) -> dict[str, list[float]]:
        return {name[key]: [by[(*key, x)][metric] if (*key, x) in by else float("nan") for x in xs] for key in keys}

    fig, (left, right) = new_figure(2)
    line_chart(left, xs, series("mb_per_s"), xlabel="nodes", ylabel="MB/s", title="throughput")
    line_chart(right, xs, series("mb_per_s_node"), xlabel="nodes", ylabel="MB/s per node", title="per node")
    fig.suptitle(title)
    return fig


def plot(rows: list[NodeRow], path: str, title: str) -> None:
    from workbench.bench.charts import save

    save(figure(list(rows), title), path)
