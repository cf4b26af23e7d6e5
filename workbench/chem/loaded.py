"""Index shards opened in a worker process, kept between queries (bounded LRU cache).

An index file is memory-mapped (``storage.index.open_index``): its fingerprints, CIDs, SMILES and
pickles are read straight from the page cache, as file-backed pages the kernel can drop, never
copied into the process. What a process holds of its own (anonymous memory) is small: per record
batch, the popcount bin starts of its Morgan fingerprints (16 kB) and, for batches with unparsable
records, a validity mask; and molecules decoded from their pickles (about 24 kB each, against ~320
bytes pickled), kept for the next query within ``WORKBENCH_CHEM_MOL_CACHE_MB`` (default 8 MB per
process) and ``WORKBENCH_CHEM_CACHE_MB`` (everything the cache holds; default a third of RAM per
core). Survivors beyond that budget are decoded and matched inside RDKit on each query.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np
import pyarrow as pa
from rdkit import Chem

from workbench.chem.molecules import has_match, match_pickles, mol_from_pickle
from workbench.chem.similarity import MorganBatches, MorganSearch
from workbench.storage.index import MORGAN_COLUMNS, PATTERN_COLUMNS, open_index
from workbench.util.arrow import arrow_array, numpy_view, string_array, validity

MOL_BYTES = 24_000  # resident cost of one decoded drug-sized molecule (measured on MOSES), for the budgets
MOL_CACHE_MB = 8  # default budget for decoded molecules per process (~330 drug-sized ones)
MAX_OPEN = 256  # index files kept open (mapped) per process
MATCH_CHUNK = 16_384  # survivors handed to RDKit at a time (their pickles are copied: ~5 MB)

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


class _Batch:
    """One record batch of an index file: mapped columns, read on first use."""

    def __init__(self, batch: pa.RecordBatch, offset: int):
        self.batch, self.offset = batch, offset
        self.cids = numpy_view(batch.column("cid"))
        self.pickles: pa.BinaryArray = batch.column("mol")
        self._valid: np.ndarray | None = None
        self._pattern: list[np.ndarray] | None = None
        self._morgan: MorganSearch | None = None

    def valid(self, rows: np.ndarray) -> np.ndarray:
        """Mask of the batch ``rows`` that hold a molecule (unparsable records never match)."""
        if self._valid is None:
            self._valid = validity(self.pickles)
        return self._valid[rows]

    def pattern(self) -> list[np.ndarray]:
        if self._pattern is None:
            self._pattern = [numpy_view(self.batch.column(name)) for name in PATTERN_COLUMNS]
        return self._pattern

    def morgan(self) -> MorganSearch:
        if self._morgan is None:
            b = self.batch
            self._morgan = MorganSearch(numpy_view(b.column("morgan_row")), numpy_view(b.column("morgan_count")),
                                        [numpy_view(b.column(name)) for name in MORGAN_COLUMNS], self.offset)
        return self._morgan

    @property
    def nbytes(self) -> int:
        return (self._valid.nbytes if self._valid is not None else 0) + (self._morgan.nbytes if self._morgan else 0)


class LoadedShard:
    """One index file version, memory-mapped (the open map pins that version)."""

    def __init__(self, path: str):
        reader = open_index(path)
        self._batches: list[_Batch] = []
        offset = 0
        for i in range(reader.num_record_batches):
            batch = reader.get_batch(i)
            self._batches.append(_Batch(batch, offset))
            offset += batch.num_rows
        self._starts = np.array([b.offset for b in self._batches], dtype=np.int64)
        self._mols: dict[int, Chem.Mol] = {}  # shard row -> decoded molecule (within the budgets)

    @property
    def nbytes(self) -> int:
        """Anonymous memory this shard holds (decoded molecules, masks, bin starts)."""
        return sum(b.nbytes for b in self._batches) + self.decoded_bytes

    @property
    def decoded_bytes(self) -> int:
        return len(self._mols) * MOL_BYTES

    @property
    def decoded(self) -> int:
        """Molecules kept decoded for the next query."""
        return len(self._mols)

    def _split(self, rows: np.ndarray) -> list[tuple[_Batch, np.ndarray, np.ndarray]]:
        """Shard ``rows`` grouped by batch: (batch, their positions in ``rows``, batch-local rows)."""
        which = np.searchsorted(self._starts, rows, side="right") - 1
        out = []
        for i in np.unique(which).tolist():
            where = np.flatnonzero(which == i)
            out.append((self._batches[i], where, rows[where] - self._batches[i].offset))
        return out

    # -- screen, match, records ----------------------------------------------------------------
    def screen(self, query_words: np.ndarray) -> np.ndarray:
        """Shard rows (ascending) whose screen fingerprint holds every bit of ``query_words``."""
        from workbench.chem.fingerprints import screen

        parts = [b.offset + screen(b.pattern(), query_words) for b in self._batches]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def cids(self, rows: np.ndarray) -> np.ndarray:
        """CIDs of shard ``rows``."""
        out = np.empty(len(rows), dtype=np.int64)
        for batch, where, local in self._split(np.asarray(rows, dtype=np.int64)):
            out[where] = batch.cids[local]
        return out

    def morgan(self) -> MorganBatches:
        """Tanimoto search over the valid rows' Morgan fingerprints (popcount order, per batch)."""
        return MorganBatches([b.morgan() for b in self._batches])

    def match(self, rows: np.ndarray, query: Chem.Mol, allowance: int, limit: int | None = None) -> np.ndarray:
        """The ``rows`` whose molecule has a substructure match for ``query``: ascending, or with
        ``limit`` the first ``limit`` in the order given.

        Molecules already decoded are matched directly; new ones are decoded from their pickles
        and kept while they fit in ``allowance`` bytes. Past that (without ``limit``), the rest
        are decoded and matched inside RDKit (a ``SubstructLibrary`` over their pickles, one
        thread), about twice as fast as decoding them one by one in Python.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return rows
        candidates = self._valid_rows(rows)
        keep = allowance // MOL_BYTES
        cached = self._mols
        if limit is not None:
            return np.array(self._match_python(candidates.tolist(), query, keep, limit), dtype=np.int64)
        known = np.isin(candidates, np.fromiter(cached, dtype=np.int64, count=len(cached)))  # no Python int per candidate
        fresh = candidates[~known]
        hits = [np.array(self._match_python(candidates[known].tolist() + fresh[:keep].tolist(), query, keep, None),
                         dtype=np.int64)]
        rest = fresh[keep:]
        for start in range(0, len(rest), MATCH_CHUNK):  # bounded: a chunk's pickles are copied out at a time
            part = rest[start:start + MATCH_CHUNK]
            hits.append(part[np.asarray(match_pickles(self._pickles(part), query), dtype=np.int64)])
        return np.sort(np.concatenate(hits))

    def _valid_rows(self, rows: np.ndarray) -> np.ndarray:
        if all(not b.pickles.null_count for b in self._batches):
            return rows
        keep = np.ones(len(rows), dtype=bool)
        for batch, where, local in self._split(rows):
            if batch.pickles.null_count:
                keep[where] = batch.valid(local)
        return rows[keep]

    def _pickles(self, rows: np.ndarray) -> list[bytes]:
        out: list[bytes] = [b""] * len(rows)
        for batch, where, local in self._split(rows):
            for j, data in zip(where.tolist(), batch.pickles.take(arrow_array(local)).to_pylist()):
                out[j] = data
        return out

    def _match_python(self, rows: list[int], query: Chem.Mol, keep: int, limit: int | None) -> list[int]:
        cached, hits = self._mols, []
        for i in rows:
            mol = cached.get(i)
            if mol is None:
                mol = mol_from_pickle(self._pickle(i))
                if keep > 0:
                    cached[i], keep = mol, keep - 1
            if has_match(mol, query):
                hits.append(i)
                if limit is not None and len(hits) >= limit:
                    break
        return hits

    def _pickle(self, row: int) -> bytes:
        batch = self._batches[int(np.searchsorted(self._starts, row, side="right")) - 1]
        return batch.pickles[row - batch.offset].as_py()

    def columns(self, rows: np.ndarray) -> tuple[np.ndarray, pa.Array]:
        """CIDs (numpy) and SMILES (Arrow) of shard ``rows``, in that order: no Python object per row."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.empty(len(rows), dtype=np.int64)
        parts, done = [], 0
        for batch, where, local in self._split(rows):
            parts.append(batch.batch.column("smiles").take(arrow_array(local)))
            order[where] = np.arange(done, done + len(where))
            done += len(where)
        smiles = pa.concat_arrays(parts).take(arrow_array(order)) if len(parts) > 1 else \
            (parts[0] if parts else string_array([]))
        return self.cids(rows), smiles

    def records(self, rows: np.ndarray | list[int]) -> tuple[list[int], list[str]]:
        """CIDs and SMILES of shard ``rows``, in that order, as Python lists."""
        cids, smiles = self.columns(np.asarray(rows, dtype=np.int64))
        return cids.tolist(), smiles.to_pylist()

    def close(self) -> None:
        self._batches = []
        self._mols = {}


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
        while len(self._shards) > 1 and (self.used() > cache_budget() or len(self._shards) > MAX_OPEN):
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
