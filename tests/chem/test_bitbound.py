"""Popcount-bounded Tanimoto search equals ``BulkTanimotoSimilarity``: thresholds and K nearest."""

from __future__ import annotations

import numpy as np
import pytest


def bitvect(raw: bytes):
    from rdkit import DataStructs

    return DataStructs.CreateFromFPSText(raw.hex())


@pytest.fixture(scope="module")
def fingerprints(nci_records):
    """Real Morgan fingerprints, plus empty, duplicated and dense (> 255 bits) ones, and invalid rows."""
    from workbench.chem.fingerprints import morgan_fp

    rng = np.random.default_rng(5)
    raws = [morgan_fp(r.mol) for r in nci_records if r.mol is not None][:3000]
    raws += [bytes(256)] * 3 + raws[:50]  # empty ones, exact duplicates (ties)
    dense = np.zeros((20, 2048), dtype=bool)
    for i in range(20):
        dense[i, rng.choice(2048, 200 + 20 * i, replace=False)] = True
    raws += [np.packbits(d, bitorder="little").tobytes() for d in dense]
    raw = np.frombuffer(b"".join(raws), dtype=np.uint8).reshape(len(raws), 256)
    valid = np.ones(len(raws), dtype=bool)
    valid[rng.choice(len(raws), 40, replace=False)] = False
    return raw, valid


def truth(raw: np.ndarray, valid: np.ndarray, query: bytes) -> np.ndarray:
    from rdkit import DataStructs

    sims = np.array(DataStructs.BulkTanimotoSimilarity(bitvect(query), [bitvect(r.tobytes()) for r in raw]))
    sims[~valid] = -1.0  # never reported
    return sims


def search_over(raw: np.ndarray, valid: np.ndarray, layout: str):
    """One sorted array, or uneven record batches each sorted on its own (as an index file holds them)."""
    from workbench.chem.similarity import MorganBatches, MorganSearch, morgan_layout

    if layout == "one":
        return MorganSearch.from_fingerprints(raw, valid)
    cuts = [0, 700, 701, 2000, len(raw)]
    return MorganBatches([MorganSearch(*morgan_layout(raw[a:b], valid[a:b]), a) for a, b in zip(cuts, cuts[1:])])


def queries(raw: np.ndarray) -> list[bytes]:
    picks = [0, 7, 100, 999, 2500, len(raw) - 1, len(raw) - 10, 3001]
    return [raw[i].tobytes() for i in picks] + [bytes(256), b"\xff" * 256]


@pytest.mark.parametrize("layout", ["one", "batches"])
@pytest.mark.parametrize("threshold", [0.0, 0.1, 0.35, 0.5, 0.7, 0.9, 1.0])
def test_threshold_equals_bulk_tanimoto(fingerprints, threshold, layout):
    raw, valid = fingerprints
    search = search_over(raw, valid, layout)
    for query in queries(raw):
        expected = truth(raw, valid, query)
        rows, sims = search.threshold(query, threshold)
        want = np.flatnonzero(expected >= threshold)
        order = np.argsort(rows)
        assert rows[order].tolist() == want.tolist()
        assert sims[order].tolist() == expected[want].tolist()  # bit-identical floats


@pytest.mark.parametrize("layout", ["one", "batches"])
@pytest.mark.parametrize("k", [1, 3, 10, 57, 5000])
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.75])
def test_nearest_keeps_the_k_best_and_their_ties(fingerprints, k, threshold, layout):
    raw, valid = fingerprints
    search = search_over(raw, valid, layout)
    for query in queries(raw):
        expected = truth(raw, valid, query)
        rows, sims = search.nearest(query, k, threshold)
        assert sims.tolist() == expected[rows].tolist()
        eligible = np.flatnonzero(expected >= threshold)
        best = eligible[np.lexsort((eligible, -expected[eligible]))][:k]  # by score, then row
        got = rows[np.lexsort((rows, -sims))][:k]
        assert got.tolist() == best.tolist()
        if len(best) == k:  # every tie of the k-th best came back, nothing below it
            kth = expected[best[-1]]
            assert set(rows.tolist()) == set(np.flatnonzero(expected >= kth).tolist()) & set(eligible.tolist())


def test_bins_that_cannot_reach_the_threshold_are_not_read(fingerprints):
    from workbench.chem.similarity import MorganSearch

    raw, valid = fingerprints
    search = MorganSearch.from_fingerprints(raw, valid)
    small = min(range(len(raw)), key=lambda i: (not valid[i], abs(int(np.bitwise_count(raw[i]).sum()) - 12)))
    search.threshold(raw[small].tobytes(), 0.8)
    assert 0 < search.scored < 0.2 * len(search)
    search.nearest(raw[small].tobytes(), 5)
    assert search.scored < len(search)  # the 5th best closes the search before every bin is read


def test_empty_shard():
    from workbench.chem.similarity import MorganSearch

    search = MorganSearch.from_fingerprints(np.zeros((0, 256), dtype=np.uint8), np.zeros(0, dtype=bool))
    assert [len(x) for x in search.threshold(bytes(256), 0.0)] == [0, 0]
    assert [len(x) for x in search.nearest(b"\x01" * 256, 3)] == [0, 0]
