"""Tanimoto search rate on one core: threshold 0.7 and top-10 over >= 750k Morgan fingerprints.

Real MOSES molecules (Morgan radius 2, 2048 bits; computed once and cached under ``bench-data/``),
replicated to ``--fingerprints`` rows. Per query, times (this process's CPU time, best of
``--repeat``) the workbench search (``MorganSearch``: popcount bins, byte-transposed kernel) at
threshold 0.7 and for the 10 nearest, both over one sorted array and as an index file holds them
(record batches of 65,536 rows, each sorted on its own: ``MorganBatches``), the previous full-scan kernel (``tanimoto``) and RDKit's
``BulkTanimotoSimilarity`` over the same fingerprints, and checks that the results equal
``BulkTanimotoSimilarity``'s: the same rows, bit-identical scores. The rate is fingerprints
searched per second (as chemfp reports it): rows ruled out by popcount count as searched.

    python benchmarks/chem/similarity_throughput.py [--fingerprints 750000] [--queries 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data import ROOT, best_cpu, real_smiles  # noqa: E402


def moses_fingerprints(count: int) -> np.ndarray:
    """``(count, 256)`` uint8 Morgan fingerprints of the first ``count`` parsable MOSES molecules."""
    path = ROOT / f"morgan-r2-2048-{count}.npy"
    if path.exists():
        return np.load(path)
    from rdkit import Chem, RDLogger

    from workbench.chem.fingerprints import morgan_fp

    RDLogger.DisableLog("rdApp.*")
    raws = [morgan_fp(m) for m in (Chem.MolFromSmiles(s.decode()) for s in real_smiles(count + 1000)) if m is not None]
    raw = np.frombuffer(b"".join(raws[:count]), dtype=np.uint8).reshape(-1, 256)
    ROOT.mkdir(parents=True, exist_ok=True)
    np.save(path, raw)
    return raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fingerprints", type=int, default=750_000)
    parser.add_argument("--real", type=int, default=250_000, help="distinct MOSES molecules, replicated")
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from rdkit import DataStructs

    from workbench.chem.fingerprints import popcounts, tanimoto, words
    from workbench.chem.similarity import MorganBatches, MorganSearch, morgan_layout
    from workbench.storage.index import BATCH_ROWS

    real = moses_fingerprints(args.real)
    raw = np.ascontiguousarray(np.tile(real, (args.fingerprints // len(real) + 1, 1))[: args.fingerprints])
    n = len(raw)
    start = time.process_time()
    search = MorganSearch.from_fingerprints(raw, np.ones(n, dtype=bool))
    load_s = time.process_time() - start
    batched = MorganBatches([MorganSearch(*morgan_layout(raw[a:a + BATCH_ROWS], np.ones(len(raw[a:a + BATCH_ROWS]), bool)), a)
                             for a in range(0, n, BATCH_ROWS)])
    columns = np.ascontiguousarray(words(raw, n).T)
    counts = popcounts(words(raw, n))
    bitvects = [DataStructs.CreateFromFPSText(row.tobytes().hex()) for row in raw]
    picks = np.random.default_rng(7).choice(len(real), args.queries, replace=False)

    rows = []
    for i in picks.tolist():
        query = raw[i].tobytes()
        t07, (rows07, sims07) = best_cpu(lambda: search.threshold(query, 0.7), args.repeat)
        scored07 = search.scored
        t10, (rows10, sims10) = best_cpu(lambda: search.nearest(query, 10), args.repeat)
        scored10 = search.scored
        b07, (brows07, bsims07) = best_cpu(lambda: batched.threshold(query, 0.7), args.repeat)
        b10, (brows10, bsims10) = best_cpu(lambda: batched.nearest(query, 10), args.repeat)
        tfull, _ = best_cpu(lambda: tanimoto(columns, counts, words(query)[0]), args.repeat)
        trd, bulk = best_cpu(lambda: DataStructs.BulkTanimotoSimilarity(bitvects[i], bitvects), 1)
        bulk = np.array(bulk)
        want07 = np.flatnonzero(bulk >= 0.7)
        order = np.argsort(rows07)
        if rows07[order].tolist() != want07.tolist() or sims07[order].tolist() != bulk[want07].tolist():
            raise SystemExit(f"threshold 0.7 results differ from BulkTanimotoSimilarity for query {i}")
        border = np.argsort(brows07)
        if brows07[border].tolist() != want07.tolist() or bsims07[border].tolist() != bulk[want07].tolist():
            raise SystemExit(f"threshold 0.7 results (batches) differ from BulkTanimotoSimilarity for query {i}")
        top = np.lexsort((np.arange(n), -bulk))[:10]
        for r10, s10 in ((rows10, sims10), (brows10, bsims10)):
            got = r10[np.lexsort((r10, -s10))][:10]
            if got.tolist() != top.tolist() or s10.tolist() != bulk[r10].tolist():
                raise SystemExit(f"top-10 results differ from BulkTanimotoSimilarity for query {i}")
        rows.append({"query_row": i, "popcount": int(counts[i]), "hits_0.7": len(want07), "kth_best": float(bulk[top[-1]]),
                     "threshold_0.7_per_s": n / t07, "scored_0.7": scored07 / n, "top10_per_s": n / t10,
                     "scored_top10": scored10 / n, "batches_0.7_per_s": n / b07, "batches_top10_per_s": n / b10,
                     "full_scan_per_s": n / tfull, "rdkit_bulk_per_s": n / trd})
        r = rows[-1]
        print(f"row {i:7d} popcount {r['popcount']:3d}: 0.7 {r['threshold_0.7_per_s'] / 1e6:6.1f} M/s "
              f"(scored {r['scored_0.7']:.2f}, {r['hits_0.7']} hits)  top-10 {r['top10_per_s'] / 1e6:6.1f} M/s "
              f"(scored {r['scored_top10']:.2f}, 10th {r['kth_best']:.3f})  batches {r['batches_0.7_per_s'] / 1e6:6.1f} / "
              f"{r['batches_top10_per_s'] / 1e6:6.1f} M/s  full scan {r['full_scan_per_s'] / 1e6:5.1f} M/s"
              f"  RDKit {r['rdkit_bulk_per_s'] / 1e6:5.1f} M/s")

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    summary = {"fingerprints": n, "distinct": len(real), "queries": len(rows), "load_s": load_s,
               "bytes_per_fingerprint": search.nbytes / n,
               **{f"median_{k}": median(k) for k in ("threshold_0.7_per_s", "top10_per_s", "batches_0.7_per_s",
                                                     "batches_top10_per_s", "full_scan_per_s",
                                                     "rdkit_bulk_per_s", "scored_0.7", "scored_top10")}}
    summary["threshold_0.7_vs_rdkit"] = summary["median_threshold_0.7_per_s"] / summary["median_rdkit_bulk_per_s"]
    summary["top10_vs_rdkit"] = summary["median_top10_per_s"] / summary["median_rdkit_bulk_per_s"]
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "queries": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
