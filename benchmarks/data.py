"""Benchmark data: real SMILES (MOSES, else RDKit's NCI set) replicated with new CIDs.

Large data is built on demand under ``bench-data/`` (git-ignored) and reused; never committed.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(os.environ.get("WORKBENCH_BENCH_DATA", Path(__file__).resolve().parent.parent / "bench-data"))


def real_smiles(limit: int = 2_000_000) -> list[bytes]:
    """MOSES SMILES from the molsets wheel; RDKit's NCI set when PyPI is out of reach."""
    from workbench.errors import WorkbenchError
    from workbench.storage.recipes import moses_cid_smiles, nci_smi

    try:
        return [line.split(b"\t", 1)[1].rstrip(b"\n") for line in moses_cid_smiles(limit=limit)]
    except WorkbenchError:
        return [line.split()[0].encode() for line in nci_smi().read_text().splitlines()]


def cid_smiles_file(target_bytes: int, name: str | None = None) -> Path:
    """A ``CID<TAB>SMILES`` file of about ``target_bytes``, CIDs 1..N."""
    ROOT.mkdir(parents=True, exist_ok=True)
    path = ROOT / (name or f"cid-smiles-{target_bytes // 10**6}MB.tsv")
    if path.exists() and path.stat().st_size >= target_bytes * 0.99:
        return path
    smiles = real_smiles()
    tmp = path.with_suffix(".tmp")
    written, cid = 0, 0
    with open(tmp, "wb") as fh:
        while written < target_bytes:
            block = b"".join(b"%d\t%s\n" % (cid + i + 1, s) for i, s in enumerate(smiles))
            cid += len(smiles)
            if written + len(block) > target_bytes:  # the last block: cut on a line boundary
                block = block[: block.rfind(b"\n", 0, target_bytes - written) + 1]
                fh.write(block)
                break
            fh.write(block)
            written += len(block)
    tmp.rename(path)
    return path


def dataset(target_bytes: int, shard_size: str = "64MB") -> Path:
    """An ingested dataset of about ``target_bytes`` (built once, then reused)."""
    import workbench as wb

    directory = ROOT / f"ds-{target_bytes // 10**6}MB-{shard_size}"
    if not (directory / "manifest.json").exists():
        wb.ingest([cid_smiles_file(target_bytes)], directory, shard_size=shard_size, force=True)
    return directory


def best_cpu(fn: Callable[[], Any], repeat: int = 1, before: Callable[[], Any] | None = None) -> tuple[float, Any]:
    """(best CPU seconds of this process over ``repeat`` runs, last result); ``before`` runs untimed first."""
    best, result = math.inf, None
    for _ in range(repeat):
        if before:
            before()
        start = time.process_time()
        result = fn()
        best = min(best, time.process_time() - start)
    return best, result
