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
scores are strictly below ``r``): the bar rises with the K best found.
"""

from __future__ import annotations

import math

import numpy as np

from workbench.chem.fingerprints import popcounts, words
from workbench.storage.index import FP_BITS, FP_BYTES

#: Bounds tried in turn for the K nearest.
_RINGS = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0)
_CHUNK = 65_536  # fingerprints per kernel step: the uint8 temporaries stay in L2


class MorganSearch:
    """One shard's valid Morgan fingerprints, sorted by popcount and byte-transposed."""

    def __init__(self, raw: np.ndarray, valid: np.ndarray):
        """``raw``: ``(n, FP_BYTES)`` uint8 fingerprints in row order; ``valid``: rows to search."""
        rows = np.flatnonzero(valid)
        counts = popcounts(words(np.ascontiguousarray(raw[rows]), len(rows))) if len(rows) else np.zeros(0, np.int32)
        order = np.argsort(counts, kind="stable")
        self.rows = rows[order].astype(np.int32 if len(valid) < 2**31 else np.int64)  # shard row of each position
        self.counts = counts[order].astype(np.int32)
        self.bytes = np.ascontiguousarray(raw[self.rows].T) if len(rows) else np.zeros((FP_BYTES, 0), np.uint8)
        #: sorted positions of popcount ``p`` are ``starts[p]:starts[p + 1]``
        self.starts = np.searchsorted(self.counts, np.arange(FP_BITS + 2)).astype(np.int64)
        self.scored = 0  #: fingerprints scored by the last search (the rest were ruled out by popcount)

    @property
    def nbytes(self) -> int:
        return self.rows.nbytes + self.counts.nbytes + self.bytes.nbytes + self.starts.nbytes

    def __len__(self) -> int:
        return len(self.rows)

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
                    np.bitwise_and(self.bytes[k, lo + start:lo + stop], query[k], out=t)
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
            first, last = int(self.counts[lo]) if hi > lo else 0, int(self.counts[hi - 1]) if hi > lo else 0
            sizes = np.diff(np.clip(self.starts[first:last + 2], lo, hi))
            minimum = np.repeat(np.minimum(need[first:last + 1], np.iinfo(common.dtype).max), sizes).astype(common.dtype)
            keep = np.flatnonzero(common >= minimum)
        else:
            keep = np.arange(len(common))
        c = common[keep].astype(np.int64)
        denom = self.counts[lo + keep] + qcount - c
        sims = np.zeros(len(keep), dtype=np.float64)
        np.divide(c, denom, out=sims, where=denom > 0)  # RDKit: two empty fingerprints give 0.0
        good = sims >= threshold
        return keep[good], sims[good]

    def _window(self, qcount: int, bound: float) -> tuple[int, int]:
        """Sorted positions whose popcount ``b`` may reach ``T >= bound`` (one bin of slack each side)."""
        if bound <= 0.0:
            return 0, len(self.rows)
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
        return self.rows[lo + keep], sims

    def nearest(self, query_raw: bytes, k: int, threshold: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of the ``k`` best with ``T >= threshold`` — with every row tying the
        ``k``-th best, so that a cut by (score, CID) afterwards is exact.

        Rings of falling bound ``r``: score the bins that may reach ``r`` (those not scored yet);
        once ``k`` rows reach ``r``, every row that could tie or beat the ``k``-th best is among
        them (unscored rows are strictly below ``r``).
        """
        query = np.frombuffer(query_raw, dtype=np.uint8)
        qcount = int(np.bitwise_count(query).sum())
        self.scored = 0
        parts: list[tuple[int, np.ndarray]] = []  # (first sorted position, common counts) scored so far
        read: tuple[int, int] | None = None
        for ring in _RINGS:
            bound = max(ring, threshold)
            lo, hi = self._window(qcount, bound)
            for a, b in [(lo, hi)] if read is None else [(lo, read[0]), (read[1], hi)]:
                if b > a:
                    parts.append((a, self._common(query, qcount, a, b)))
            read = (lo, hi)
            found = [self._select(common, qcount, a, bound) for a, common in parts]
            if sum(len(keep) for keep, _ in found) >= k or bound <= threshold:
                break
        positions = np.concatenate([a + keep for (a, _), (keep, _) in zip(parts, found)]) if parts else np.zeros(0, np.int64)
        sims = np.concatenate([s for _, s in found]) if parts else np.zeros(0)
        if len(sims) > k:
            kth = float(np.partition(sims, len(sims) - k)[len(sims) - k])
            keep = np.flatnonzero(sims >= kth)
            positions, sims = positions[keep], sims[keep]
        return self.rows[positions], sims
