"""The screen fingerprint's own contract: what it reads off a molecule is RDKit's, a molecule's bits
do not depend on the molecules fingerprinted with it, and whatever it cannot fingerprint in full
gets every bit. (That the screen never drops a match is ``test_screen.py``'s fuzz test.)"""

from __future__ import annotations

import numpy as np
import pytest

from tests.chem.test_screen import molecules, smiles_texts  # noqa: F401  (module fixtures)


def test_atomic_numbers_read_off_the_text_are_rdkit_s(smiles_texts):  # noqa: F811
    from rdkit import Chem

    from workbench.chem.molecules import atomic_numbers

    read = 0
    extra = ["[13CH3][Se][Si](C)(C)Cl.[Na+]", "[Co@OH1](C)(C)(C)(C)(C)C", "[CH3:12]C", "[2H]C", "C[H]", "[Hg]([Cl])Cl",
             "c1cc[se]c1", "[nH]1cccc1", "[As]", "[te]1cccc1", "*C", "[1*]C", "CC |$R;$|", "CCO ethanol"]
    for text in smiles_texts + extra:
        mol = Chem.MolFromSmiles(text)
        if mol is None:
            continue
        truth = [atom.GetAtomicNum() for atom in mol.GetAtoms()]
        assert atomic_numbers(mol, text) == truth == atomic_numbers(mol), text
        read += "[H" not in text and " " not in text
    assert read > 7000


def test_an_atom_is_aromatic_exactly_when_it_has_an_aromatic_bond(molecules):  # noqa: F811
    """In every screenable molecule (``C:C`` is not: an aromatic bond between aliphatic atoms)."""
    from rdkit import Chem

    from workbench.chem.screening import molecule_screenable

    screenable = [m for m in molecules if molecule_screenable(m)]
    assert len(molecules) - len(screenable) < 10
    for mol in screenable:
        for atom in mol.GetAtoms():
            has = any(b.GetBondType() == Chem.BondType.AROMATIC for b in atom.GetBonds())
            assert atom.GetIsAromatic() == has, Chem.MolToSmiles(mol)


def test_a_molecule_s_bits_do_not_depend_on_its_batch(molecules):  # noqa: F811
    from workbench.chem.screen_fp import CHUNK
    from workbench.chem.screening import molecule_graph, molecule_screen_fps

    graphs = [molecule_graph(m) for m in molecules[:CHUNK * 2 + 100]]
    together = molecule_screen_fps(graphs)
    backwards = molecule_screen_fps(graphs[::-1])[::-1]
    assert (together == backwards).all()
    for i in range(0, len(graphs), 97):
        assert (molecule_screen_fps([graphs[i]])[0] == together[i]).all()
    assert len({row.tobytes() for row in together}) > len(graphs) // 2  # real, distinct fingerprints


def _complete_graph(atoms: int):
    from rdkit import Chem

    mol = Chem.RWMol()
    for _ in range(atoms):
        mol.AddAtom(Chem.Atom(0))
    for i in range(atoms):
        for j in range(i + 1, atoms):
            mol.AddBond(i, j, Chem.BondType.SINGLE)
    Chem.SanitizeMol(mol)
    return mol.GetMol()


@pytest.mark.parametrize("make", [
    lambda: __import__("rdkit.Chem", fromlist=["x"]).MolFromSmiles("*(C)(C)(C)(C)(C)(C)(C)(C)C"),  # a degree-9 atom
    lambda: _complete_graph(9),  # 9·8·7·6·5·4 paths of five bonds
    lambda: __import__("rdkit.Chem", fromlist=["x"]).MolFromSmiles("C" * 300),  # more atoms than the bond matrix takes
])
def test_a_molecule_that_cannot_be_fingerprinted_in_full_gets_every_bit(make):
    from workbench.chem.screening import ALL_BITS, molecule_screen_fp

    mol = make()
    assert mol is not None
    assert molecule_screen_fp(mol) == ALL_BITS


def test_a_query_cut_off_keeps_a_part_of_its_bits(monkeypatch):
    """A query graph with too many paths is fingerprinted in part: a subset of its bits, still a sound screen."""
    from workbench.chem import screen_fp
    from workbench.chem.screening import query_graph

    graph = query_graph(_complete_graph(7))  # degree 6: 7·6·5·4·3·2 = 5,040 paths of five bonds
    full, full_cut = screen_fp.fingerprints([graph])
    monkeypatch.setattr(screen_fp, "MAX_PATHS", 1000)
    part, part_cut = screen_fp.fingerprints([graph])
    assert not full_cut[0] and part_cut[0]
    assert ((part & full) == part).all() and part.any() and (part != full).any()


def test_query_layers_screen_smarts_with_untyped_bonds(molecules):  # noqa: F811
    """``c1ccncc1`` in SMARTS leaves every bond single-or-aromatic: the aromatic layer still screens."""
    from rdkit import Chem

    from workbench.chem.fingerprints import screen, words
    from workbench.chem.screening import molecule_graph, molecule_screen_fps, query_screen

    columns = np.ascontiguousarray(words(molecule_screen_fps([molecule_graph(m) for m in molecules]).tobytes(),
                                         len(molecules)).T)
    for smarts in ("c1ccncc1", "[#6]~[#7]~[#8]", "c1ccc2ccccc2c1"):
        query = Chem.MolFromSmarts(smarts)
        kept = set(screen(columns, query_screen(query)).tolist())
        hits = {i for i, m in enumerate(molecules) if m.HasSubstructMatch(query)}
        assert hits <= kept, smarts
        assert len(kept) < len(molecules) // 4, (smarts, len(kept), len(hits))  # without its layers: all kept
