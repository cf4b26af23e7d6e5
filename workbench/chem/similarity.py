"""Tanimoto search over one shard's Morgan fingerprints with popcount bounds (BitBound).

Scores equal ``DataStructs.BulkTanimotoSimilarity``: ``c / (a + b - c)`` in float64, 0.0 when both
fingerprints are empty, with ``a``, ``b`` the popcounts and ``c`` the bits in common.

Layout: the shard's valid fingerprints sorted by popcount, stored *byte-transposed*
(``(FP_BYTES, n)`` uint8: row ``k`` holds byte ``k`` of every fingerprint, contiguous). A query's
intersection counts then only read the rows of its non-zero bytes — a drug-like Morgan query sets
~40 of 2048 bits, so ~35 of 256 bytes: a seventh of the data — each as one vectorised
``and``/``popcount``/``add`` pass.

BitBound: ``T(a, b) <= min(a, b) / max(a, b)``, so a threshold ``t`` only needs the popcount bins
``t·a <= b <= a/t`` (contiguous in popcount order). For the K nearest, bins are taken in rings of
falling bound ``r``; once K rows score at least ``r``, no unread row can enter nor tie (their
scores are strictly below ``r``). Over several parts (an index file's record batches), each part
after the first K are found reads only the bins that may reach the K-th best so far, in one window:
the bar rises with the K best found.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from workbench.chem.fingerprints import popcounts, words
from workbench.storage.index import FP_BITS, FP_BYTES, NO_MORGAN

#: Bounds tried in turn for the K nearest.
_RINGS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0)
_CHUNK = 65_536  # fingerprints per kernel step: the uint8 temporaries stay in L2
_TRANSPOSE_ROWS = 256  # fingerprints per step of morgan_layout's transpose (64 kB)


def morgan_layout(raw: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The search layout of ``(n, FP_BYTES)`` uint8 fingerprints in row order: ``(rows, counts,
    columns)`` — each position's row (uint32), its popcount (uint16, ascending; rows not ``valid``
    last with ``NO_MORGAN``) and the fingerprints byte-transposed in that order, ``(FP_BYTES, n)``."""
    n = len(valid)
    counts = popcounts(words(np.ascontiguousarray(raw), n)) if n else np.zeros(0, np.int32)
    counts = np.where(valid, counts, NO_MORGAN)
    order = np.argsort(counts, kind="stable")
    columns = np.empty((FP_BYTES, n), np.uint8)
    for start in range(0, n, _TRANSPOSE_ROWS):  # a block at a time: a whole-array byte transpose misses the cache per byte
        block = order[start:start + _TRANSPOSE_ROWS]
        columns[:, start:start + len(block)] = raw[block].T
    return order.astype(np.uint32), counts[order].astype(np.uint16), columns


class MorganSearch:
    """Morgan fingerprints sorted by popcount and byte-transposed (``morgan_layout``): one shard,
    or one record batch of an index file, whose columns stay memory-mapped."""

    def __init__(self, rows: np.ndarray, counts: np.ndarray, columns: Sequence[np.ndarray] | np.ndarray,
                 offset: int = 0):
        """``rows``/``counts``/``columns`` as ``morgan_layout`` returns them (``columns``: any
        sequence of ``FP_BYTES`` arrays); results are ``offset + row``."""
        self.positions = rows  # row of each sorted position
        self.counts = counts
        self.bytes = columns
        self.offset = offset
        #: sorted positions of popcount ``p`` are ``starts[p]:starts[p + 1]``; valid rows end at ``starts[FP_BITS + 1]``
        self.starts = np.searchsorted(counts, np.arange(FP_BITS + 2)).astype(np.int64)
        self.valid = int(self.starts[FP_BITS + 1])
        self.scored = 0  #: fingerprints scored by the last search (the rest were ruled out by popcount)

    @classmethod
    def from_fingerprints(cls, raw: np.ndarray, valid: np.ndarray) -> "MorganSearch":
        """From ``(n, FP_BYTES)`` uint8 fingerprints in row order; ``valid``: the rows to search."""
        return cls(*morgan_layout(raw, valid))

    @property
    def nbytes(self) -> int:
        """Bytes of anonymous memory this search holds (mapped columns are file-backed)."""
        own = self.starts.nbytes
        return own + (self.bytes.nbytes + self.positions.nbytes + self.counts.nbytes if isinstance(self.bytes, np.ndarray) else 0)

    def __len__(self) -> int:
        return self.valid

    # -- the kernel ---------------------------------------------------------------------------
    def _common(self, query: np.ndarray, qcount: int, lo: int, hi: int) -> np.ndarray:
        """Bits in common between ``query`` and sorted positions ``lo:hi``."""
        n = hi - lo
        common = np.zeros(n, dtype=np.uint8 if qcount <= 255 else np.uint16)
        if n and qcount:
            nz = np.flatnonzero(query)
            tmp = np.empty(min(n, _CHUNK), dtype=np.uint8)
            for start in range(0, n, _CHUNK):
                stop = min(n, start + _CHUNK)
                t, acc = tmp[: stop - start], common[start:stop]
                for k in nz:
                    np.bitwise_and(self.bytes[k][lo + start:lo + stop], query[k], out=t)
                    np.bitwise_count(t, out=t)
                    np.add(acc, t, out=acc, casting="unsafe")
        self.scored += n
        return common

    def _select(self, common: np.ndarray, qcount: int, lo: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Positions (from ``lo``) whose Tanimoto is ``>= threshold``, and their exact scores.

        ``T >= t`` needs ``c >= t (a + b) / (1 + t)``: a per-bin minimum, checked on the integer
        counts first (one bit of slack), then exact float64 scores on the few that pass.
        """
        hi = lo + len(common)
        if threshold > 0.0:
            bins = np.arange(FP_BITS + 1)
            need = np.maximum(np.ceil(threshold * (qcount + bins) / (1.0 + threshold)) - 1, 0).astype(np.int32)
            first, last = (int(self.counts[lo]), int(self.counts[hi - 1])) if hi > lo else (0, 0)
            sizes = np.diff(np.clip(self.starts[first:last + 2], lo, hi))
            minimum = np.repeat(np.minimum(need[first:last + 1], np.iinfo(common.dtype).max), sizes).astype(common.dtype)
            keep = np.flatnonzero(common >= minimum)
        else:
            keep = np.arange(len(common))
        sims = self._scores(common[keep], qcount, lo + keep)
        good = sims >= threshold
        return keep[good], sims[good]

    def _scores(self, common: np.ndarray, qcount: int, positions: np.ndarray) -> np.ndarray:
        """Exact Tanimoto (float64, as RDKit) of sorted ``positions`` with ``common`` bits in common."""
        c = common.astype(np.int64)
        denom = self.counts[positions].astype(np.int64) + qcount - c
        sims = np.zeros(len(c), dtype=np.float64)
        np.divide(c, denom, out=sims, where=denom > 0)  # RDKit: two empty fingerprints give 0.0
        return sims

    def _window(self, qcount: int, bound: float) -> tuple[int, int]:
        """Sorted positions whose popcount ``b`` may reach ``T >= bound`` (one bin of slack each side)."""
        if bound <= 0.0:
            return 0, self.valid
        low = max(0, math.floor(bound * qcount) - 1)
        high = min(FP_BITS, math.ceil(qcount / bound) + 1)
        return int(self.starts[low]), int(self.starts[high + 1])

    # -- searches -----------------------------------------------------------------------------
    def threshold(self, query_raw: bytes, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Shard rows with ``T >= threshold`` and their scores (unordered)."""
        query = np.frombuffer(query_raw, dtype=np.uint8)
        qcount = int(np.bitwise_count(query).sum())
        self.scored = 0
        lo, hi = self._window(qcount, threshold)
        keep, sims = self._select(self._common(query, qcount, lo, hi), qcount, lo, threshold)
        return self.rows(lo + keep), sims

    def nearest(self, query_raw: bytes, k: int, threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of the ``k`` best with ``T >= threshold`` — with every row tying the
        ``k``-th best, so that a cut by (score, CID) afterwards is exact (``nearest_over``)."""
        return nearest_over([self], query_raw, k, threshold)

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """Shard rows (int64) of sorted ``positions``."""
        return self.positions[positions].astype(np.int64) + self.offset


def best_with_ties(sims: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest ``sims`` and of every one tying the ``k``-th."""
    if len(sims) <= k:
        return np.arange(len(sims))
    kth = float(np.partition(sims, len(sims) - k)[len(sims) - k])
    return np.flatnonzero(sims >= kth)


class MorganBatches:
    """One search over several ``MorganSearch`` parts (the record batches of an index file)."""

    def __init__(self, parts: list[MorganSearch]):
        self.parts = parts

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    @property
    def scored(self) -> int:
        return sum(p.scored for p in self.parts)

    def threshold(self, query_raw: bytes, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Shard rows with ``T >= threshold`` and their scores (unordered)."""
        found = [p.threshold(query_raw, threshold) for p in self.parts]
        return _joined(found)

    def nearest(self, query_raw: bytes, k: int, threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """As ``MorganSearch.nearest``, the rings taken over every part at once."""
        return nearest_over(self.parts, query_raw, k, threshold)


def nearest_over(parts: list[MorganSearch], query_raw: bytes, k: int, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best rows (and every row tying the ``k``-th) with ``T >= threshold`` over ``parts``.

    Part by part: until ``k`` rows are found, in rings of falling bound (``_rings``); after that
    the ``k``-th best so far is the bar, and a part reads only the bins that may reach it, in one
    window (a row below it can neither enter nor tie).
    """
    query = np.frombuffer(query_raw, dtype=np.uint8)
    qcount = int(np.bitwise_count(query).sum())
    rows, sims = np.zeros(0, np.int64), np.zeros(0)
    for part in parts:
        part.scored = 0
        if len(sims) >= k:
            bar = max(threshold, float(sims.min()))  # the k-th best: ``sims`` holds the k best and their ties
            lo, hi = part._window(qcount, bar)
            keep, found = part._select(part._common(query, qcount, lo, hi), qcount, lo, bar) if hi > lo else \
                (np.zeros(0, np.int64), np.zeros(0))
            more = part.rows(lo + keep)
        else:
            more, found = _rings(part, query, qcount, k, threshold, sims)
        rows, sims = np.concatenate([rows, more]), np.concatenate([sims, found])
        best = best_with_ties(sims, k)
        rows, sims = rows[best], sims[best]
    return rows, sims


def _rings(part: MorganSearch, query: np.ndarray, qcount: int, k: int, threshold: float,
           carried: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``part`` with ``T >= r`` for the first ring bound ``r`` (falling, never below
    ``threshold``) at which they and the ``carried`` scores of earlier parts reach ``k``: every
    row that could tie or beat the ``k``-th best is among them (unread rows are strictly below
    ``r``). Each window is read once; its counts are selected again at each lower bound."""
    scored: list[tuple[int, np.ndarray]] = []  # (first position, bits in common of each row)
    read: tuple[int, int] | None = None
    found: list[tuple[int, tuple[np.ndarray, np.ndarray]]] = []
    for ring in _RINGS:
        bound = max(ring, threshold)
        lo, hi = part._window(qcount, bound)
        for a, b in [(lo, hi)] if read is None else [(lo, read[0]), (read[1], hi)]:
            if b > a:
                scored.append((a, part._common(query, qcount, a, b)))
        read = (lo, hi)
        found = [(a, part._select(common, qcount, a, bound)) for a, common in scored]
        reached = sum(len(keep) for _, (keep, _) in found) + int(np.count_nonzero(carried >= bound))
        if reached >= k or bound <= threshold:
            break
    if not found:
        return np.zeros(0, np.int64), np.zeros(0)
    return (part.rows(np.concatenate([a + keep for a, (keep, _) in found])),
            np.concatenate([sims for _, (_, sims) in found]))


def _joined(found: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if not found:
        return np.zeros(0, np.int64), np.zeros(0)
    return np.concatenate([r for r, _ in found]), np.concatenate([s for _, s in found])
