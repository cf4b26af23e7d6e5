"""Queries: SMARTS / SMILES parsed once, with a clear ``QueryError`` when RDKit rejects them."""

from __future__ import annotations

from functools import lru_cache

from rdkit import Chem

from workbench.chem.molecules import quiet_rdkit
from workbench.errors import QueryError


@lru_cache(maxsize=64)
def substructure_query(text: str, smiles: bool = False) -> Chem.Mol:
    """The query molecule: SMARTS, or SMILES (``Chem.MolFromSmiles``) when ``smiles``."""
    kind = "SMILES" if smiles else "SMARTS"
    if not text.strip():
        raise QueryError(f"invalid {kind} {text!r}: the query is empty")
    if "\0" in text:  # RDKit would silently read only the part before it
        raise QueryError(f"invalid {kind} {text!r}: it contains a NUL byte")
    quiet_rdkit()
    mol = Chem.MolFromSmiles(text) if smiles else Chem.MolFromSmarts(text)
    if mol is None:
        raise QueryError(f"invalid {kind} {text!r}: RDKit cannot parse it")
    return mol


@lru_cache(maxsize=64)
def similarity_query(smiles: str) -> Chem.Mol:
    """The molecule to compare with, from SMILES."""
    return substructure_query(smiles, smiles=True)
