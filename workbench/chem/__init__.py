"""RDKit helpers for the chemistry jobs: parsing, fingerprints as uint64 words, screening, Tanimoto.

Everything here runs on workers as well as on the client; RDKit and numpy are imported at module
level, so import this package only where chemistry is actually needed.
"""

from workbench.chem.fingerprints import (
    morgan_fp,
    popcounts,
    screen,
    tanimoto,
    words,
)
from workbench.chem.molecules import mol_from_pickle, mol_to_pickle, parse_smiles, quiet_rdkit, read_shard_records
from workbench.chem.query import similarity_query, substructure_query
from workbench.chem.screening import molecule_screen_fp, query_screen

__all__ = [
    "molecule_screen_fp", "morgan_fp", "mol_from_pickle", "mol_to_pickle", "parse_smiles",
    "popcounts", "query_screen", "quiet_rdkit", "read_shard_records", "screen", "similarity_query",
    "substructure_query", "tanimoto", "words",
]
