"""The screen's no-false-negative check at benchmark size, and how much it screens against RDKit's.

Generated SMARTS (``tests/chem/smarts_fuzz.py``: every primitive, recursion, ring and any bonds,
negation, OR/AND) over real molecules (MOSES, else RDKit's NCI set). For each query, every
molecule the workbench screen drops is matched with ``HasSubstructMatch``: a match there is a
false negative. The same is done for a screen with RDKit's own ``PatternFingerprint(query)`` (what
``SubstructLibrary``'s ``PatternHolder`` uses), and both screens' candidate counts are reported.

    python benchmarks/chem/screen_fuzz.py [--molecules 50000] [--queries 2000] [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from data import real_smiles  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from rdkit import Chem, DataStructs, RDLogger

    from tests.chem.smarts_fuzz import generate
    from workbench.chem.fingerprints import screen, words
    from workbench.chem.screening import molecule_graph, molecule_screen_fps, query_screen

    def pattern_fp(mol: Chem.Mol) -> bytes:
        return bytes.fromhex(DataStructs.BitVectToFPSText(Chem.PatternFingerprint(mol, 2048)))

    RDLogger.DisableLog("rdApp.*")
    mols = [m for m in (Chem.MolFromSmiles(s.decode()) for s in real_smiles(args.molecules)[: args.molecules]) if m]
    ours = np.ascontiguousarray(words(molecule_screen_fps([molecule_graph(m) for m in mols]).tobytes(), len(mols)).T)
    theirs = np.ascontiguousarray(words(b"".join(pattern_fp(m) for m in mols), len(mols)).T)
    queries = generate(mols, args.queries, seed=args.seed)
    totals = {"ours_false_negatives": 0, "rdkit_false_negatives": 0, "ours_queries_with_loss": 0,
              "rdkit_queries_with_loss": 0, "ours_candidates": 0, "rdkit_candidates": 0, "screen_seconds": 0.0}
    examples: list[str] = []
    start = time.perf_counter()
    for text in queries:
        query = Chem.MolFromSmarts(text)
        t0 = time.perf_counter()
        kept_ours = screen(ours, query_screen(query))
        totals["screen_seconds"] += time.perf_counter() - t0
        kept_theirs = screen(theirs, words(pattern_fp(query))[0])
        totals["ours_candidates"] += len(kept_ours)
        totals["rdkit_candidates"] += len(kept_theirs)
        dropped_ours = np.setdiff1d(np.arange(len(mols)), kept_ours, assume_unique=True)
        lost_ours = [i for i in dropped_ours.tolist() if mols[i].HasSubstructMatch(query)]
        # RDKit's screen: its drops that ours kept (the rest were just checked: no match there)
        extra = np.setdiff1d(np.setdiff1d(np.arange(len(mols)), kept_theirs, assume_unique=True), dropped_ours)
        lost_theirs = [i for i in extra.tolist() if mols[i].HasSubstructMatch(query)]
        totals["ours_false_negatives"] += len(lost_ours)
        totals["rdkit_false_negatives"] += len(lost_theirs)
        totals["ours_queries_with_loss"] += bool(lost_ours)
        totals["rdkit_queries_with_loss"] += bool(lost_theirs)
        if lost_theirs and len(examples) < 10:
            examples.append(text)
    pairs = len(queries) * len(mols)
    summary = {"molecules": len(mols), "queries": len(queries), **totals,
               "ours_candidate_fraction": totals["ours_candidates"] / pairs,
               "rdkit_candidate_fraction": totals["rdkit_candidates"] / pairs,
               "seconds": time.perf_counter() - start, "rdkit_loses_hits_on": examples}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1) + "\n")
    if totals["ours_false_negatives"]:
        raise SystemExit("the workbench screen dropped matches")


if __name__ == "__main__":
    main()
