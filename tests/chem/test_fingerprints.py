"""Fingerprint words, the screen and vectorised Tanimoto against RDKit's own bit vectors."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def mols(nci_records):
    return [r.mol for r in nci_records if r.mol is not None][:1500]


def test_words_hold_rdkit_bits(mols):
    from rdkit.Chem import rdFingerprintGenerator

    from workbench.chem import morgan_fp, words

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    for mol in mols[:50]:
        fp = words(morgan_fp(mol))[0]
        bits = {w * 64 + b for w in range(32) for b in range(64) if int(fp[w]) >> b & 1}
        assert bits == set(gen.GetFingerprint(mol).GetOnBits())


def test_tanimoto_equals_bulk_tanimoto(mols):
    from rdkit import DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    from workbench.chem import morgan_fp, popcounts, tanimoto, words

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fps = words(b"".join(morgan_fp(m) for m in mols), len(mols))
    columns = np.ascontiguousarray(fps.T)
    for q in (0, 7, 500):
        truth = DataStructs.BulkTanimotoSimilarity(gen.GetFingerprint(mols[q]), [gen.GetFingerprint(m) for m in mols])
        assert tanimoto(columns, popcounts(fps), fps[q]).tolist() == truth


def test_tanimoto_of_empty_fingerprints_is_zero_like_rdkit():
    from rdkit import DataStructs

    from workbench.chem import popcounts, tanimoto

    empty = np.zeros((3, 32), dtype=np.uint64)
    assert tanimoto(np.ascontiguousarray(empty.T), popcounts(empty), empty[0]).tolist() == \
        DataStructs.BulkTanimotoSimilarity(DataStructs.ExplicitBitVect(2048), [DataStructs.ExplicitBitVect(2048)] * 3)


def test_screen_keeps_every_match(mols):
    from rdkit import Chem

    from workbench.chem import molecule_screen_fp, query_screen, screen, words

    fps = words(b"".join(molecule_screen_fp(m) for m in mols), len(mols))
    for smarts in ("c1ccncc1", "C(=O)N", "[#7]", "*"):
        query = Chem.MolFromSmarts(smarts)
        kept = set(screen(np.ascontiguousarray(fps.T), query_screen(query)).tolist())
        matches = {i for i, m in enumerate(mols) if m.HasSubstructMatch(query)}
        assert matches <= kept
        assert smarts == "*" or len(kept) < len(mols)  # the screen really screens
