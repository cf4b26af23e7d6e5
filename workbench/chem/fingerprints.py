"""Fingerprints as numpy ``uint64`` words, the substructure screen and vectorised Tanimoto.

The screen fingerprint itself is made in ``workbench.chem.screen_fp``.

A fingerprint of ``FP_BITS`` bits is ``FP_BYTES`` raw bytes (bit ``i`` is bit ``i % 8`` of byte
``i // 8``, as in the FPS format), viewed as ``FP_WORDS`` little-endian ``uint64`` words.
"""

from __future__ import annotations

import numpy as np
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from workbench.storage.index import FP_BITS, FP_WORDS

_morgan = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=FP_BITS)
_CHUNK = 16_384  # rows per vectorised step: keeps the working set in cache


def _raw(bitvect: DataStructs.ExplicitBitVect) -> bytes:
    return bytes.fromhex(DataStructs.BitVectToFPSText(bitvect))


def morgan_fp(mol: Chem.Mol) -> bytes:
    """Morgan radius-2 2048-bit fingerprint (``GetMorganGenerator`` defaults), as raw bytes."""
    return _raw(_morgan.GetFingerprint(mol))


def words(raw: bytes | bytearray | memoryview | np.ndarray, rows: int | None = None) -> np.ndarray:
    """Raw fingerprint bytes (one or many, concatenated) as an ``(rows, FP_WORDS)`` uint64 array."""
    arr = np.frombuffer(raw, dtype="<u8") if not isinstance(raw, np.ndarray) else raw.view("<u8")
    return arr.reshape(-1 if rows is None else rows, FP_WORDS)


def popcounts(fps: np.ndarray) -> np.ndarray:
    """Bits set per row of an ``(n, FP_WORDS)`` array."""
    return np.bitwise_count(fps).sum(axis=1, dtype=np.int32)


def screen(columns: np.ndarray | list[np.ndarray], query: np.ndarray) -> np.ndarray:
    """Row numbers whose fingerprint has every bit of ``query`` set (candidates for a match).

    ``columns`` is the fingerprint matrix transposed, ``(FP_WORDS, n)`` (or ``FP_WORDS`` arrays of
    ``n`` words each, as an index file maps them). The query's most selective word is tested over
    all rows, each next word only over the rows still in.
    """
    n = len(columns[0])
    nz = np.flatnonzero(query)
    rows = np.arange(n)
    for j in nz[np.argsort(-np.bitwise_count(query[nz]), kind="stable")]:
        word = query[j]
        values = columns[j] if len(rows) == n else columns[j][rows]
        rows = rows[(values & word) == word]
        if not len(rows):
            break
    return rows


def tanimoto(columns: np.ndarray, counts: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Tanimoto of ``query`` against every fingerprint, as RDKit computes it (float64).

    ``columns`` is the fingerprint matrix transposed, ``(FP_WORDS, n)`` C-contiguous, so each
    step is a contiguous pass over one word of every fingerprint; ``counts`` their popcounts.
    Only the query's non-zero words contribute to the intersection.
    """
    n = columns.shape[1]
    qcount = int(np.bitwise_count(query).sum())
    nz = np.flatnonzero(query)
    common = np.zeros(n, dtype=np.int32)
    acc = np.empty(_CHUNK, dtype=np.uint16)
    tmp = np.empty(_CHUNK, dtype=np.uint64)
    bits = np.empty(_CHUNK, dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        k = stop - start
        acc[:k] = 0
        for j in nz:
            np.bitwise_and(columns[j, start:stop], query[j], out=tmp[:k])
            np.bitwise_count(tmp[:k], out=bits[:k])
            np.add(acc[:k], bits[:k], out=acc[:k])
        common[start:stop] = acc[:k]
    denom = counts.astype(np.int32) + qcount - common
    out = np.zeros(n, dtype=np.float64)
    np.divide(common, denom, out=out, where=denom > 0)  # RDKit: two empty fingerprints give 0.0
    return out
