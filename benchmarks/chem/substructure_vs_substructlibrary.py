"""Head-to-head, one process, one core: workbench substructure search against RDKit's SubstructLibrary.

Same molecules (MOSES, else RDKit's NCI set), same queries (``queries.txt``: hand-written,
RLewis, PAINS). Measures, per query, RDKit's
``SubstructLibrary(CachedTrustedSmilesMolHolder(), PatternHolder()).GetMatches(q, numThreads=1,
maxResults=10**9)`` against ``SubstructureJob.run`` on the indexed shard, first query on a
shard (``cold``: Parquet read, pickles decoded), repeated (``warm``: molecules cached in the
worker process), repeated with no room to keep molecules (``uncached``: what a dataset far larger
than the cache sees: every survivor decoded from its pickle again), and the naive parse-every-SMILES-and-match loop; checks the results are
identical. Also index build rate against RDKit's own parse + fingerprint loop. Times are this
process's CPU time (best of ``--repeat``), so a busy machine does not distort per-core rates.

    python benchmarks/chem/substructure_vs_substructlibrary.py [--molecules 100000] [--repeat 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data import best_cpu as timed  # noqa: E402
from data import real_smiles  # noqa: E402

HERE = Path(__file__).resolve().parent


def panel(path: Path = HERE / "queries.txt") -> list[tuple[str, str]]:
    """(SMARTS, name) pairs from the panel file."""
    rows = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            smarts, _, name = line.partition(" ")
            rows.append((smarts, name.strip() or smarts))
    return rows


def write_shard(smiles: list[bytes], directory: Path):
    from workbench.storage.manifest import ShardInfo

    data = b"".join(b"%d\t%s\n" % (i, s) for i, s in enumerate(smiles, 1))
    (directory / "shards").mkdir(parents=True)
    (directory / "shards" / "bench.tsv").write_bytes(data)
    return ShardInfo(name="bench", path="shards/bench.tsv", records=len(smiles), bytes=len(data),
                     sha256=hashlib.sha256(data).hexdigest(), first_cid=1, last_cid=len(smiles))


def vouched(shard, index_path: Path):
    """``shard`` with its index file's digest and size, as the manifest holds them after a build."""
    from dataclasses import replace

    from workbench.storage.integrity import sha256_file

    return replace(shard, index_sha256=sha256_file(index_path), index_bytes=index_path.stat().st_size)


def rdkit_parse_and_fingerprint(smiles: list[str]) -> tuple[float, list]:
    """RDKit's own loop: parse, pattern fingerprint, Morgan fingerprint. Returns (seconds, mols)."""
    from rdkit import Chem
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    start = time.process_time()
    mols = []
    for smi in smiles:
        mol = Chem.MolFromSmiles(smi)
        if mol is not None:
            Chem.PatternFingerprint(mol, 2048)
            gen.GetFingerprint(mol)
        mols.append(mol)
    return time.process_time() - start, mols


def substruct_library(mols: list):
    """The library on the same molecules (trusted canonical SMILES + pattern fingerprints), and its CIDs."""
    from rdkit import Chem
    from rdkit.Chem import rdSubstructLibrary

    holder, fps = rdSubstructLibrary.CachedTrustedSmilesMolHolder(), rdSubstructLibrary.PatternHolder()
    library = rdSubstructLibrary.SubstructLibrary(holder, fps)
    cids = []
    for cid, mol in enumerate(mols, 1):
        if mol is not None:
            holder.AddSmiles(Chem.MolToSmiles(mol))
            fps.AddFingerprint(Chem.PatternFingerprint(mol, 2048))
            cids.append(cid)
    return library, cids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=100_000)
    parser.add_argument("--naive-sample", type=int, default=5_000, help="molecules for the parse-and-match loop")
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings per query and side")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from rdkit import Chem, RDLogger

    from workbench.chem.indexing import build_shard_index
    from workbench.chem.loaded import CACHE
    from workbench.jobs.base import ShardTask
    from workbench.jobs.substructure import SubstructureJob

    RDLogger.DisableLog("rdApp.*")
    raw = real_smiles(args.molecules)[: args.molecules]
    smiles = [s.decode() for s in raw]
    root = Path(tempfile.mkdtemp(prefix="wb-chem-bench-"))
    shard = write_shard(raw, root)
    task = ShardTask(str(root), shard)

    build_s, _ = timed(lambda: build_shard_index(task.path, task.index_path, shard))
    shard = vouched(shard, Path(task.index_path))  # as the manifest records it after `workbench index`
    task = ShardTask(str(root), shard)
    rdkit_s, mols = rdkit_parse_and_fingerprint(smiles)
    library, lib_cids = substruct_library(mols)
    print(f"{len(smiles):,} molecules; index build {len(smiles) / build_s:,.0f} mol/s, RDKit parse+pattern+Morgan "
          f"{len(smiles) / rdkit_s:,.0f} mol/s -> {rdkit_s / build_s:.2f}x")

    rows = []
    sample = [(cid, m) for cid, m in enumerate(mols[: args.naive_sample], 1)]
    print(f"{'query':30} {'hits':>7} {'library':>9} {'cold':>9} {'warm':>9} {'uncached':>9} {'naive':>8}"
          "  warm/lib cold/lib unc./lib")
    for smarts, name in panel():
        query = Chem.MolFromSmarts(smarts)
        job = SubstructureJob(smarts)
        lib_s, lib_hits = timed(lambda: library.GetMatches(query, numThreads=1, maxResults=10**9), args.repeat)
        cold_s, cold = timed(lambda: job.run(task), args.repeat, before=CACHE.clear)
        warm_s, warm = timed(lambda: job.run(task), args.repeat)
        os.environ["WORKBENCH_CHEM_CACHE_MB"] = "0"  # nothing kept: every survivor decoded again
        CACHE.clear()
        job.run(task)
        uncached_s, uncached = timed(lambda: job.run(task), args.repeat)
        del os.environ["WORKBENCH_CHEM_CACHE_MB"]
        naive_s, _ = timed(lambda: [c for c, s in zip(range(len(sample)), smiles)
                                    if (m := Chem.MolFromSmiles(s)) is not None and m.HasSubstructMatch(query)])
        naive_s *= len(smiles) / len(sample)  # per-molecule cost, scaled to the whole set
        expected = sorted(lib_cids[i] for i in lib_hits)
        for out in (cold, warm, uncached):
            got = sorted(int(line.split(b"\t", 1)[0]) for line in out.payload.splitlines())
            if got != expected:
                raise SystemExit(f"results differ for {smarts}: library {len(expected)}, workbench {len(got)}")
        rows.append({"query": smarts, "name": name, "hits": len(expected), "library_s": lib_s, "cold_s": cold_s,
                     "warm_s": warm_s, "uncached_s": uncached_s, "naive_s": naive_s})
        print(f"{name[:30]:30} {len(expected):7,} {lib_s * 1e3:7.1f}ms {cold_s * 1e3:7.1f}ms {warm_s * 1e3:7.1f}ms "
              f"{uncached_s * 1e3:7.1f}ms {naive_s:7.1f}s  {lib_s / warm_s:7.2f}x {lib_s / cold_s:7.2f}x "
              f"{lib_s / uncached_s:7.2f}x")

    def gmean(key: str) -> float:
        return math.exp(sum(math.log(r["library_s"] / r[key]) for r in rows) / len(rows))

    summary = {
        "molecules": len(smiles), "queries": len(rows),
        "speedup_vs_library_warm_gmean": gmean("warm_s"), "speedup_vs_library_cold_gmean": gmean("cold_s"),
        "speedup_vs_library_uncached_gmean": gmean("uncached_s"),
        "speedup_warm_vs_naive_gmean": math.exp(sum(math.log(r["naive_s"] / r["warm_s"]) for r in rows) / len(rows)),
        "speedup_cold_vs_naive_gmean": math.exp(sum(math.log(r["naive_s"] / r["cold_s"]) for r in rows) / len(rows)),
        "speedup_uncached_vs_naive_gmean":
            math.exp(sum(math.log(r["naive_s"] / r["uncached_s"]) for r in rows) / len(rows)),
        "index_build_mol_per_s": len(smiles) / build_s, "rdkit_parse_fp_mol_per_s": len(smiles) / rdkit_s,
        "index_build_vs_rdkit": rdkit_s / build_s,
    }
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "queries": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
