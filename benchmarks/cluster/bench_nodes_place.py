"""Time `workbench nodes` and `workbench place` on testbeds of 3, 8 and 16 nodes (needs root).

    .venv/bin/python benchmarks/cluster/bench_nodes_place.py [--nodes 3 8 16] [--mb 64]
        [--shard-size 4MB] [--replicas 2] [--json results.json]

For each size: build a testbed, time `nodes --json`, a first `place` (copies every shard and
index file, verifies sha256 on the nodes), a second `place` (resume: verifies, copies nothing),
then tear the testbed down. Commands run as the user runs them (the CLI, one process each).
The dataset is real SMILES replicated to --mb megabytes (``benchmarks/data.py``, built once).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data import dataset as bench_dataset  # noqa: E402


def timed(*args: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"`workbench {' '.join(args)}` failed: {proc.stderr.strip()}")
    return seconds, proc.stdout


def measure(nodes: int, dataset: Path, replicas: int, tmp: Path) -> dict:
    cluster = tmp / f"bench-{nodes}.toml"
    timed("testbed", "up", "--nodes", str(nodes), "--cluster", str(cluster))
    try:
        probe_s, out = timed("nodes", "--cluster", str(cluster), "--json")
        assert all(r["reachable"] for r in json.loads(out))
        first_s, out = timed("place", "--dataset", str(dataset), "--cluster", str(cluster), "--replicas",
                             str(replicas), "--json")
        copied = sum(r["bytes_copied"] for r in json.loads(out))
        again_s, out = timed("place", "--dataset", str(dataset), "--cluster", str(cluster), "--replicas",
                             str(replicas), "--json")
        assert sum(r["copied"] for r in json.loads(out)) == 0
    finally:
        timed("testbed", "down", "--cluster", str(cluster))
    return {"nodes": nodes, "nodes_s": probe_s, "place_s": first_s, "place_mb": copied / 1e6, "resume_s": again_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[3, 8, 16])
    parser.add_argument("--mb", type=int, default=64, help="dataset size in MB")
    parser.add_argument("--shard-size", default="4MB")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-bench-cluster-") as tmp_name:
        tmp = Path(tmp_name)
        dataset = tmp / "ds"  # a copy: `place` records the placement in the manifest
        shutil.copytree(bench_dataset(args.mb * 10**6, args.shard_size), dataset)
        shards = len(json.loads((dataset / "manifest.json").read_text())["shards"])
        rows = [measure(n, dataset, args.replicas, tmp) for n in args.nodes]
    print(f"dataset {dataset.name}: {shards} shards, {args.replicas} replicas")
    print("| nodes | `nodes` s | `place` s | MB copied | MB/s | `place` again s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['nodes']} | {r['nodes_s']:.2f} | {r['place_s']:.2f} | {r['place_mb']:.0f} | "
              f"{r['place_mb'] / r['place_s']:.0f} | {r['resume_s']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
