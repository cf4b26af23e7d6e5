"""Index shards loaded in a worker process, kept between queries (bounded LRU cache).

Workers are long-lived processes, so the second query on a shard skips reading Parquet:
fingerprints stay as numpy arrays and pickles as an Arrow column, within ``WORKBENCH_CHEM_CACHE_MB``
per process (default: a third of RAM divided by the number of cores). Molecules decoded from their
pickles (about 24 kB each, against ~320 bytes pickled) are kept only within a small fixed budget,
``WORKBENCH_CHEM_MOL_CACHE_MB`` (default 64 MB per process); the rest are decoded and matched
inside RDKit on each query.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rdkit import Chem

from workbench.chem.fingerprints import words
from workbench.chem.molecules import match_pickles, mol_from_pickle
from workbench.chem.similarity import MorganSearch
from workbench.storage.index import FP_BYTES, FP_WORDS

MOL_BYTES = 24_000  # resident cost of one decoded drug-sized molecule (measured on MOSES), for the budgets
MOL_CACHE_MB = 64  # default budget for decoded molecules per process

FileKey = tuple[str, int, int, int]  # real path, inode, size, mtime: one version of one file


def cache_budget() -> int:
    """Bytes a worker process may keep: ``WORKBENCH_CHEM_CACHE_MB``, else a third of RAM per core."""
    if "WORKBENCH_CHEM_CACHE_MB" in os.environ:
        return int(float(os.environ["WORKBENCH_CHEM_CACHE_MB"]) * 1e6)
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return ram // (3 * (os.cpu_count() or 1))


def mol_cache_budget() -> int:
    """Bytes of decoded molecules a worker process may keep: ``WORKBENCH_CHEM_MOL_CACHE_MB``."""
    return int(float(os.environ.get("WORKBENCH_CHEM_MOL_CACHE_MB", MOL_CACHE_MB)) * 1e6)


def file_key(path: str) -> FileKey | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (os.path.realpath(path), st.st_ino, st.st_size, st.st_mtime_ns)


class LoadedShard:
    """Columns of one index file version, read on first use (the open file pins that version)."""

    def __init__(self, path: str):
        self._fh = open(path, "rb")
        self._file = pq.ParquetFile(self._fh)
        self.cids: np.ndarray = self._file.read(columns=["cid"])["cid"].to_numpy()
        self.n = len(self.cids)
        self.nbytes = self.cids.nbytes
        self._smiles: pa.ChunkedArray | None = None
        self._pattern: np.ndarray | None = None
        self._morgan: MorganSearch | None = None
        self._pickles: pa.BinaryArray | None = None
        self._mols: list[Chem.Mol | None] = []
        self.decoded_bytes = 0  # of the decoded molecules kept
        self._valid: list[bool] = []

    def _fingerprint_bytes(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """Raw fingerprints ``(n, FP_BYTES)`` uint8 with null rows zeroed, and the mask of valid rows."""
        col = self._file.read(columns=[column])[column].combine_chunks()
        valid = col.is_valid().to_numpy(zero_copy_only=False)
        if col.null_count:
            col = col.fill_null(pa.scalar(b"\0" * FP_BYTES, type=col.type))
        if self.n == 0:
            return np.zeros((0, FP_BYTES), dtype=np.uint8), valid
        raw = np.frombuffer(col.buffers()[1], dtype=np.uint8)[col.offset * FP_BYTES:(col.offset + self.n) * FP_BYTES]
        return raw.reshape(self.n, FP_BYTES), valid

    def pattern(self) -> np.ndarray:
        """Pattern fingerprints, transposed ``(FP_WORDS, n)``; unparsable rows are all zero."""
        if self._pattern is None:
            raw, _ = self._fingerprint_bytes("pattern")
            self._pattern = np.ascontiguousarray(words(raw, self.n).T) if self.n else np.zeros((FP_WORDS, 0), np.uint64)
            self.nbytes += self._pattern.nbytes
        return self._pattern

    def morgan(self) -> MorganSearch:
        """The valid rows' Morgan fingerprints, sorted by popcount for Tanimoto search."""
        if self._morgan is None:
            self._morgan = MorganSearch(*self._fingerprint_bytes("morgan"))
            self.nbytes += self._morgan.nbytes
        return self._morgan

    def match(self, rows: np.ndarray, query: Chem.Mol, allowance: int, limit: int | None = None) -> list[int]:
        """The ``rows`` (ascending) whose molecule has a substructure match for ``query``.

        Molecules already decoded are matched directly; new ones are decoded from their pickles
        and kept while they fit in ``allowance`` bytes. Past that (without ``limit``), the rest
        are decoded and matched inside RDKit (a ``SubstructLibrary`` over their pickles, one
        thread), about twice as fast as decoding them one by one in Python.
        """
        if not len(rows):
            return []
        self._load_pickles()
        cached, valid = self._mols, self._valid
        candidates = [i for i in rows.tolist() if valid[i]]  # unparsable records never match
        keep = allowance // MOL_BYTES
        fresh = [i for i in candidates if cached[i] is None]
        if limit is not None or len(fresh) <= keep:
            return self._match_python(candidates, query, keep, limit)
        known = [i for i in candidates if cached[i] is not None]
        hits = self._match_python(known + fresh[:keep], query, keep, None)
        rest = fresh[keep:]
        found = match_pickles(self._pickles.take(pa.array(rest, type=pa.int64())).to_pylist(), query)
        return sorted(hits + [rest[j] for j in found])

    def _match_python(self, rows: list[int], query: Chem.Mol, keep: int, limit: int | None) -> list[int]:
        cached, pickles, hits = self._mols, self._pickles, []
        for i in rows:
            mol = cached[i]
            if mol is None:
                mol = mol_from_pickle(pickles[i].as_py())
                if keep > 0:
                    cached[i], keep = mol, keep - 1
                    self.nbytes += MOL_BYTES
                    self.decoded_bytes += MOL_BYTES
            if mol.HasSubstructMatch(query):
                hits.append(i)
                if limit is not None and len(hits) >= limit:
                    break
        return hits

    def _load_pickles(self) -> pa.BinaryArray:
        if self._pickles is None:
            self._pickles = self._file.read(columns=["mol"])["mol"].combine_chunks()
            self._valid = self._pickles.is_valid().to_numpy(zero_copy_only=False).tolist()
            self._mols = [None] * self.n
            self.nbytes += self._pickles.nbytes
        return self._pickles

    @property
    def decoded(self) -> int:
        """Molecules kept decoded for the next query."""
        return sum(m is not None for m in self._mols)

    @property
    def smiles(self) -> pa.ChunkedArray:
        if self._smiles is None:
            self._smiles = self._file.read(columns=["smiles"])["smiles"]
            self.nbytes += self._smiles.nbytes
        return self._smiles

    def records(self, rows: np.ndarray | list[int]) -> tuple[list[int], list[str]]:
        """CIDs and SMILES of ``rows``."""
        if not len(rows):
            return [], []
        rows = np.asarray(rows, dtype=np.int64)
        return self.cids[rows].tolist(), self.smiles.take(pa.array(rows)).to_pylist()

    def close(self) -> None:
        self._fh.close()


class ShardCache:
    """LRU of ``LoadedShard`` keyed by index file version."""

    def __init__(self) -> None:
        self._shards: OrderedDict[FileKey, LoadedShard] = OrderedDict()

    def get(self, key: FileKey) -> LoadedShard:
        shard = self._shards.pop(key, None)
        if shard is None:
            for stale in [k for k in self._shards if k[0] == key[0]]:
                self._shards.pop(stale).close()
            shard = LoadedShard(key[0])
        self._shards[key] = shard
        while self.used() > cache_budget() and len(self._shards) > 1:
            self._shards.popitem(last=False)[1].close()
        return shard

    def shards(self) -> list[LoadedShard]:
        return list(self._shards.values())

    def used(self) -> int:
        return sum(s.nbytes for s in self._shards.values())

    def room(self) -> int:
        """Bytes still free for decoded molecules (both budgets)."""
        decoded = sum(s.decoded_bytes for s in self._shards.values())
        return max(0, min(cache_budget() - self.used(), mol_cache_budget() - decoded))

    def clear(self) -> None:
        while self._shards:
            self._shards.popitem()[1].close()


#: The per-process cache (one per worker process).
CACHE = ShardCache()
