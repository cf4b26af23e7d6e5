"""Memory of a search session: anonymous resident bytes per molecule across the process tree.

An indexed dataset of ``--molecules`` real MOSES molecules (built once under ``bench-data/``);
one Python process opens it and runs the substructure panel (``queries.txt``) and a few
similarity searches through the public API on the local backend (``--workers`` worker
processes), as a notebook session would. After each query, sums ``RssAnon`` (resident memory
that is not file-backed: decoded molecules, decompressed columns, Python objects) over this
process and its children, and reports the peak per molecule, the same above the baseline of the
started process tree (interpreters, imports), the first-query and per-query times, and the index
size on disk per molecule. Also the peak of ``Pss_Anon`` summed the same way, which counts once the
pages forked workers still share with the interpreter they were forked from (``RssAnon`` counts
them in each).

    python benchmarks/chem/session_memory.py [--molecules 100000] [--workers 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from data import ROOT, real_smiles  # noqa: E402
from substructure_vs_substructlibrary import panel  # noqa: E402


def anonymous_rss(pid: int | None = None, field: str = "RssAnon", source: str = "status") -> int:
    """``RssAnon`` of this process (or ``pid``) and all its descendants, in bytes; with
    ``field="Pss_Anon", source="smaps_rollup"`` their proportional share instead (pages a forked
    worker still shares with its Nanny's interpreter counted once, not in each)."""
    import psutil

    total = 0
    try:
        me = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return 0
    try:
        tree = [me, *me.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for proc in tree:
        try:
            with open(f"/proc/{proc.pid}/{source}") as fh:
                for line in fh:
                    if line.startswith(field + ":"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def anonymous_pss() -> int:
    return anonymous_rss(field="Pss_Anon", source="smaps_rollup")


def indexed_dataset(molecules: int, workers: int) -> Path:
    import workbench as wb

    directory = ROOT / f"chem-session-{molecules}"
    if not (directory / "manifest.json").exists() or wb.open_dataset(directory).info()["index"] != "complete":
        ROOT.mkdir(parents=True, exist_ok=True)
        source = ROOT / f"chem-session-{molecules}.tsv"
        source.write_bytes(b"".join(b"%d\t%s\n" % (i, s) for i, s in enumerate(real_smiles(molecules)[:molecules], 1)))
        ds = wb.ingest([source], directory, shard_size="8MB", format="cid-smiles", force=True)
        ds.build_index(workers=max(2, workers))
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import workbench as wb

    directory = indexed_dataset(args.molecules, args.workers)
    index_bytes = sum(p.stat().st_size for p in (directory / "index").glob("*.arrow"))
    ds = wb.open_dataset(directory)
    n = ds.manifest.records
    import importlib

    from workbench.backends import get_backend

    client = get_backend("local", workers=args.workers).client()  # interpreters and imports: not per molecule
    for module in ("workbench.chem.loaded", "workbench.chem.screening", "workbench.jobs.substructure"):
        importlib.import_module(module)
        client.run(importlib.import_module, module)
    baseline, baseline_pss = anonymous_rss(), anonymous_pss()
    rows, peak, peak_pss = [], 0, 0
    queries = [("substructure", q) for q, _ in panel()[:20]] + [("similar", s) for s in
                                                                 ("CC(=O)Nc1ccc(O)cc1", "c1ccc2ncccc2c1", "CN1CCN(CC1)C")]
    start = time.perf_counter()
    for kind, query in queries:
        t0 = time.perf_counter()
        table = ds.substructure(query, workers=args.workers) if kind == "substructure" else \
            ds.similar(query, top=10, workers=args.workers)
        seconds = time.perf_counter() - t0
        memory, shared_once = anonymous_rss(), anonymous_pss()
        peak, peak_pss = max(peak, memory), max(peak_pss, shared_once)
        rows.append({"kind": kind, "query": query, "hits": table.num_rows, "seconds": seconds, "anon_rss": memory,
                     "anon_pss": shared_once})
        print(f"{kind:12} {query[:40]:40} {table.num_rows:7,} hits {seconds * 1e3:8.1f} ms  "
              f"anon {memory / 1e6:7.1f} MB = {memory / n:6.0f} B/molecule", flush=True)
    summary = {"molecules": n, "workers": args.workers, "queries": len(rows),
               "first_query_s": rows[0]["seconds"], "all_queries_s": time.perf_counter() - start,
               "baseline_anon_rss_bytes": baseline, "peak_anon_rss_bytes": peak,
               "peak_anon_bytes_per_molecule": peak / n, "marginal_anon_bytes_per_molecule": (peak - baseline) / n,
               "baseline_anon_pss_bytes": baseline_pss, "peak_anon_pss_bytes": peak_pss,
               "peak_anon_pss_bytes_per_molecule": peak_pss / n,
               "index_bytes_per_molecule": index_bytes / n, "pid": os.getpid()}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "queries": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
