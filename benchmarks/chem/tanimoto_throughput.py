"""Tanimoto comparisons per second on one core, over every Morgan fingerprint of an indexed dataset.

Loads the index's Morgan columns (≥ 1 M fingerprints with the default MOSES dataset), then times
``workbench.chem.tanimoto`` (the vectorised kernel) and the whole ``SimilarityJob`` per shard
(threshold, sort, result lines), against RDKit's ``DataStructs.BulkTanimotoSimilarity`` on a
sample of the same fingerprints, checking the scores are identical. Times are this process's CPU
time (best of ``--repeat``), so a busy machine does not distort the per-core rates.

    python benchmarks/chem/tanimoto_throughput.py [--dataset DIR] [--queries 10] [--rdkit-sample 200000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data import dataset  # noqa: E402


def best_of(repeat: int, fn) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, help="indexed dataset (default: 70 MB of MOSES, indexed on demand)")
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--rdkit-sample", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from rdkit import DataStructs

    import workbench as wb
    from workbench.chem import tanimoto
    from workbench.chem.loaded import LoadedShard
    from workbench.jobs.base import ShardTask
    from workbench.jobs.similarity import SimilarityJob

    ds = wb.open_dataset(args.dataset or dataset(70 * 10**6, shard_size="8MB"))
    if ds.info()["index"] != "complete":
        ds.build_index()
    loaded = [LoadedShard(str(ds.directory / s.index_path)) for s in ds.manifest.shards]
    parts = [shard.morgan() for shard in loaded]
    columns = np.ascontiguousarray(np.concatenate([p[0] for p in parts], axis=1))
    counts = np.concatenate([p[1] for p in parts])
    smiles = [s for shard in loaded for s in shard.smiles.to_pylist()]
    n = columns.shape[1]
    picks = np.linspace(0, n - 1, args.queries).astype(int)

    kernel = [n / best_of(args.repeat, lambda q=columns[:, i].copy(): tanimoto(columns, counts, q)) for i in picks]
    jobs = []
    for i in picks[:3]:
        job = SimilarityJob(smiles[i], threshold=0.7)
        tasks = [ShardTask(str(ds.directory), s) for s in ds.manifest.shards]
        [job.run(t) for t in tasks]  # load the shards into this process's cache
        jobs.append(n / best_of(args.repeat, lambda: [job.run(t) for t in tasks]))

    sample = min(args.rdkit_sample, n)
    bitvects = [DataStructs.CreateFromFPSText(columns[:, j].tobytes().hex()) for j in range(sample)]
    rdkit_rates = []
    for i in picks[:3]:
        query = bitvects[i] if i < sample else DataStructs.CreateFromFPSText(columns[:, i].tobytes().hex())
        seconds = best_of(args.repeat, lambda: DataStructs.BulkTanimotoSimilarity(query, bitvects))
        rdkit_rates.append(sample / seconds)
        ours = tanimoto(columns[:, :sample], counts[:sample], columns[:, i].copy()).tolist()
        if ours != DataStructs.BulkTanimotoSimilarity(query, bitvects):
            raise SystemExit("scores differ from BulkTanimotoSimilarity")

    summary = {"fingerprints": n, "kernel_comparisons_per_s": float(np.median(kernel)),
               "similarity_job_comparisons_per_s": float(np.median(jobs)),
               "rdkit_bulk_tanimoto_per_s": float(np.median(rdkit_rates)), "rdkit_sample": sample}
    summary["kernel_vs_rdkit"] = summary["kernel_comparisons_per_s"] / summary["rdkit_bulk_tanimoto_per_s"]
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
