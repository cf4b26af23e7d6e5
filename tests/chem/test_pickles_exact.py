"""The index's pickles answer every query exactly as the molecules ``Chem.MolFromSmiles`` gives.

Pickles are stored without computed properties and rings (they decode ~5x faster); rings come back
when a query asks: inside RDKit's library (the bulk path) or in ``mol_from_pickle`` (the molecules
a worker keeps decoded). Generated SMARTS over every primitive, plus hybridization, chirality and
ring queries nested in recursion (where the library stops and the fallback answers).
"""

from __future__ import annotations

import os

from tests.chem.smarts_fuzz import generate
from tests.chem.test_screen import molecules, smiles_texts  # noqa: F401 - the fixtures

HAND_WRITTEN = ["[R2]", "[r5]", "[x3]", "[R0;C]", "[^2]", "[C^3]", "[N^1]", "[r6;R1]", "*@*", "*!@*", "[X4;#7]",
                "[v6;S]", "[C@H](N)C", "C/C=C/C", "[$(*@*)]", "[$([C;R2])]", "[a](:[$([c;r6])])", "[h1;$([v2]-[x0&N])]",
                "[$([#6;R]~[#7;!R])]", "[Cl,Br,I]", "c1ccccc1", "[#6]~[#8]"]


def test_pickled_molecules_match_exactly(molecules):  # noqa: F811
    from rdkit import Chem

    from workbench.chem.molecules import has_match, match_pickles, mol_from_pickle, mol_to_pickle

    pickles = [mol_to_pickle(Chem.Mol(m)) for m in molecules]
    decoded = [mol_from_pickle(p) for p in pickles[:1500]]  # kept across queries, as a worker keeps them
    count = int(os.environ.get("WORKBENCH_FUZZ_QUERIES", 2000)) // 8
    wrong = []
    for text in HAND_WRITTEN + generate(molecules, count, seed=23):
        query = Chem.MolFromSmarts(text)
        truth = [m.HasSubstructMatch(query) for m in molecules]
        bulk = set(match_pickles(pickles, query))
        wrong += [(text, i, "bulk") for i, hit in enumerate(truth) if hit != (i in bulk)]
        wrong += [(text, i, "decoded") for i, m in enumerate(decoded) if truth[i] != has_match(m, query)]
    assert not wrong, f"{len(wrong)} wrong answers, e.g. {wrong[:5]}"
