"""``parse_smiles`` gives the molecule ``Chem.MolFromSmiles`` gives, on its shortcut and off it.

Text without stereo marks, hydrogen atoms, CXSMILES part or name skips ``MolFromSmiles``' stereo
perception and hydrogen removal. The same pickle (what search decodes) and the same pattern and
Morgan fingerprints (what the index stores) over every test molecule; the texts the shortcut
must not take would come out different without those steps.
"""

from __future__ import annotations

from tests.chem.test_screen import smiles_texts  # noqa: F401 - the fixture

#: Texts sanitisation rejects, or changes in ways the shortcut must keep: valence, Kekulé form,
#: dative bonds, charge-separated cleanup, radicals, metals, isotopes, names, CXSMILES.
UNUSUAL_SMILES = ["C(C)(C)(C)(C)C", "c1cccc1", "C1CC", "C((C)", "N->[Pt]", "OCl(=O)(=O)=O", "[CH2]C", "[I]1c2ccccc2-c2ccccc21",
                  "CN(C)C[C-]12C3=C4C5=C1[Fe++]23456789[C-]%10C6=C7C8=C9%10", "[O-][N+](=O)C1=CNC(=N)S1",
                  "CC1=[N+](C)C=CC=C1.Cl[I]Cl", "CN(=O)=O", "[Hg+2].[Cl-].[Cl-]", "[He]", "[13CH3][14CH2]O",
                  "CCO ethanol", "CC |$_R1;$|", "C[C@@H]1CC[C@H](C)CC1", "C1CC[C@H]2CCCC[C@@H]2C1", "FC(Cl)=C(F)Cl",
                  "", "C.C", "[Na+].[Cl-]", "c1ccc2ccccc2c1", "C1=CC=C2C=CC=CC2=C1"]

#: Texts the shortcut would get wrong: a chiral mark on an atom that is no stereocentre, double-bond
#: marks, hydrogen atoms to remove.
NEED_THE_FULL_PARSE = ["C[C@H](C)C", "C/C=C/C", "CC/C=C/C", "[H]C([H])([H])[H]", "C[H]"]


def _pickle(mol):
    from workbench.chem.molecules import mol_to_pickle

    return None if mol is None else mol_to_pickle(mol)


def _signature(mol):
    """Screen and Morgan fingerprints, then the pickle (None: rejected)."""
    from workbench.chem.fingerprints import morgan_fp
    from workbench.chem.screening import molecule_screen_fp

    return None if mol is None else (molecule_screen_fp(mol), morgan_fp(mol), _pickle(mol))


def _sanitised_only(text: str):
    from rdkit import Chem

    mol = Chem.MolFromSmiles(text, sanitize=False)
    Chem.SanitizeMol(mol)
    return mol


def test_parse_smiles_gives_what_mol_from_smiles_gives(smiles_texts):  # noqa: F811
    from rdkit import Chem, RDLogger

    from workbench.chem.molecules import NEEDS_FULL_PARSE, parse_smiles

    RDLogger.DisableLog("rdApp.*")
    texts = smiles_texts + UNUSUAL_SMILES + NEED_THE_FULL_PARSE
    wrong = [t for t in texts if _signature(parse_smiles(t)) != _signature(Chem.MolFromSmiles(t))]
    assert not wrong, f"{len(wrong)} molecules differ, e.g. {wrong[:5]}"
    shortcut = [t for t in texts if not NEEDS_FULL_PARSE.search(t)]
    assert len(shortcut) > 7000 and len(texts) - len(shortcut) >= 15  # both paths were taken
    assert parse_smiles("C(C)(C)(C)(C)C") is None and parse_smiles("C((C)") is None


def test_the_texts_that_need_the_full_parse_take_it():
    from rdkit import Chem

    from workbench.chem.molecules import NEEDS_FULL_PARSE

    for text in NEED_THE_FULL_PARSE:
        assert _pickle(_sanitised_only(text)) != _pickle(Chem.MolFromSmiles(text)), text
        assert NEEDS_FULL_PARSE.search(text), text
    for text in ["c1cc[nH]c1", "[NH4+]", "[Hg]", "[He]", "[13CH3]C", "CC(=O)[O-]"]:  # H counts, not H atoms
        assert not NEEDS_FULL_PARSE.search(text), text
