"""Index shards loaded in a worker process, kept between queries (bounded LRU cache).

Workers are long-lived processes, so the second query on a shard skips reading Parquet and
decoding molecules: fingerprints stay as numpy words, molecules decoded from their pickles stay
as ``Chem.Mol`` objects, within ``WORKBENCH_CHEM_CACHE_MB`` (default 4096) per process.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rdkit import Chem

from workbench.chem.fingerprints import FP_BYTES, FP_WORDS, popcounts, words
from workbench.chem.molecules import mol_from_pickle

MOL_BYTES = 4_000  # rough heap cost of one decoded molecule, for the cache budget


def cache_budget() -> int:
    return int(float(os.environ.get("WORKBENCH_CHEM_CACHE_MB", "4096")) * 1e6)


class LoadedShard:
    """Columns of one index file, read on first use."""

    def __init__(self, path: str):
        self.path = path
        base = pq.read_table(path, columns=["cid", "smiles"])
        self.cids: np.ndarray = base["cid"].to_numpy()
        self.smiles: pa.ChunkedArray = base["smiles"]
        self.n = len(self.cids)
        self.nbytes = self.cids.nbytes + self.smiles.nbytes
        self._pattern: np.ndarray | None = None
        self._pickles: list[bytes | None] | None = None
        self._mols: list[Chem.Mol | None] | None = None
        self._morgan: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _fingerprints(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(n, FP_WORDS) words with null rows zeroed, and the mask of valid rows."""
        col = pq.read_table(self.path, columns=[column])[column].combine_chunks()
        valid = col.is_valid().to_numpy(zero_copy_only=False)
        if col.null_count:
            col = col.fill_null(pa.scalar(b"\0" * FP_BYTES, type=col.type))
        if self.n == 0:
            return np.zeros((0, FP_WORDS), dtype=np.uint64), valid
        raw = np.frombuffer(col.buffers()[1], dtype=np.uint8)
        return words(raw[col.offset * FP_BYTES:(col.offset + self.n) * FP_BYTES], self.n), valid

    def pattern(self) -> np.ndarray:
        if self._pattern is None:
            self._pattern, _ = self._fingerprints("pattern")
            self.nbytes += self._pattern.nbytes
        return self._pattern

    def morgan(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Transposed Morgan words ``(FP_WORDS, n)``, popcounts, valid-row mask."""
        if self._morgan is None:
            fps, valid = self._fingerprints("morgan")
            self._morgan = (np.ascontiguousarray(fps.T), popcounts(fps), valid)
            self.nbytes += fps.nbytes + self._morgan[1].nbytes
        return self._morgan

    def mols(self, rows: np.ndarray, keep: bool) -> list[Chem.Mol | None]:
        """Molecules of ``rows`` (None where RDKit could not parse), decoding pickles once."""
        if self._pickles is None:
            self._pickles = pq.read_table(self.path, columns=["mol"])["mol"].to_pylist()
            self._mols = [None] * self.n
            self.nbytes += sum(len(p) + 40 for p in self._pickles if p is not None)
        assert self._mols is not None
        cached, pickles, out = self._mols, self._pickles, []
        for i in rows.tolist():
            mol = cached[i]
            if mol is None and pickles[i] is not None:
                mol = mol_from_pickle(pickles[i])
                if keep:
                    cached[i] = mol
                    self.nbytes += MOL_BYTES
            out.append(mol)
        return out

    def records(self, rows: np.ndarray) -> tuple[list[int], list[str]]:
        rows = np.asarray(rows, dtype=np.int64)
        return self.cids[rows].tolist(), self.smiles.take(pa.array(rows)).to_pylist()


class ShardCache:
    """LRU of ``LoadedShard`` keyed by index path and the shard sha256 it was built from."""

    def __init__(self) -> None:
        self._shards: OrderedDict[tuple[str, str], LoadedShard] = OrderedDict()

    def get(self, path: str, sha256: str) -> LoadedShard:
        key = (os.path.realpath(path), sha256)
        shard = self._shards.pop(key, None)
        if shard is None:
            for stale in [k for k in self._shards if k[0] == key[0]]:
                del self._shards[stale]
            shard = LoadedShard(path)
        self._shards[key] = shard
        self.trim(keep=key)
        return shard

    def used(self) -> int:
        return sum(s.nbytes for s in self._shards.values())

    def room(self) -> bool:
        """True while decoded molecules may still be kept."""
        return self.used() < cache_budget()

    def trim(self, keep: Any = None) -> None:
        while self.used() > cache_budget() and len(self._shards) > 1:
            oldest = next(iter(self._shards))
            if oldest == keep:
                break
            del self._shards[oldest]

    def clear(self) -> None:
        self._shards.clear()


#: The per-process cache (one per worker process).
CACHE = ShardCache()
