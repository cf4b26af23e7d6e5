"""Molecules: SMILES parsing exactly as the ground truth does it, binary pickles, shard records."""

from __future__ import annotations

import re
from collections.abc import Iterator

from rdkit import Chem, RDLogger

#: Text that needs every step of ``Chem.MolFromSmiles``: stereo marks (``@`` ``/`` ``\\``), a
#: hydrogen atom (``[H]``, ``[2H]``; not the counts of ``[nH]``), a CXSMILES part or a name.
#: Any other text has no stereo to perceive and no hydrogen to remove.
NEEDS_FULL_PARSE = re.compile(r"[@/\\|\s]|\[\d*H(?![a-z])")


def quiet_rdkit() -> None:
    """Silence RDKit's per-molecule error log (unparsable records are counted and listed instead)."""
    RDLogger.DisableLog("rdApp.*")


def parse_smiles(smiles: str) -> Chem.Mol | None:
    """The molecule ``Chem.MolFromSmiles`` gives (default sanitisation, the reference); None when
    RDKit rejects it.

    Text without stereo marks, hydrogen atoms, CXSMILES part or name (``NEEDS_FULL_PARSE``) is
    parsed and sanitised only: ``MolFromSmiles``' stereo perception and hydrogen removal change
    nothing there and take a ninth of its time (~8 µs a molecule on MOSES, up to 4 % of an index
    build). ``tests/chem/test_parse.py`` checks pickles and fingerprints are the same over every
    test molecule."""
    if NEEDS_FULL_PARSE.search(smiles):
        return Chem.MolFromSmiles(smiles)
    mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None:
        return None
    try:
        Chem.SanitizeMol(mol)
    except Chem.MolSanitizeException:  # what MolFromSmiles turns into None
        return None
    return mol


def mol_to_pickle(mol: Chem.Mol) -> bytes:
    """RDKit's binary pickle of a sanitised molecule without its computed properties and ring
    information (search needs neither stored: ``mol_from_pickle`` and the library recompute rings
    when a query asks), so it decodes four to five times faster. ``mol`` loses them too."""
    mol.ClearComputedProps(includeRings=True)
    return mol.ToBinary()


def mol_from_pickle(data: bytes) -> Chem.Mol:
    """A molecule back from its pickle, already sanitised: no SMILES parsing, no perception. Its
    rings are found when a query first asks about them (``has_match``)."""
    return Chem.Mol(data)


def has_match(mol: Chem.Mol, query: Chem.Mol) -> bool:
    """``mol.HasSubstructMatch(query)`` for a molecule from ``mol_from_pickle``: when the query asks
    about rings ("RingInfo not initialized"), they are perceived as ``Chem.MolFromSmiles`` does
    (symmetrised SSSR), kept on ``mol``, and the match is made again."""
    try:
        return mol.HasSubstructMatch(query)
    except RuntimeError:
        Chem.GetSymmSSSR(mol)
        return mol.HasSubstructMatch(query)


def match_pickles(pickles: list[bytes], query: Chem.Mol) -> list[int]:
    """Positions of the pickled molecules that have a substructure match for ``query``.

    Decoding and matching run inside RDKit (a one-thread ``SubstructLibrary`` over the
    pickles), with ``HasSubstructMatch``'s default parameters: the library's own default would
    take chirality into account. The library perceives rings itself when the query's atoms or
    bonds ask about them; a ring query inside a recursive SMARTS makes it stop ("RingInfo not
    initialized"), and then each molecule is decoded with its rings here.
    """
    from rdkit.Chem import rdSubstructLibrary

    holder = rdSubstructLibrary.CachedMolHolder()
    for data in pickles:
        holder.AddBinary(data)
    library = rdSubstructLibrary.SubstructLibrary(holder)
    try:
        return list(library.GetMatches(query, Chem.SubstructMatchParameters(), numThreads=1,
                                       maxResults=max(1, len(pickles))))
    except RuntimeError:
        return [i for i, data in enumerate(pickles) if has_match(mol_from_pickle(data), query)]


def read_shard_records(path: str, batch: int = 20_000) -> Iterator[tuple[list[int], list[str]]]:
    """``CID<TAB>SMILES`` lines of a shard as batches of (cids, smiles), bounded memory."""
    cids: list[int] = []
    smiles: list[str] = []
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            cid, _, smi = line.rstrip("\n").partition("\t")
            cids.append(int(cid))
            smiles.append(smi)
            if len(cids) >= batch:
                yield cids, smiles
                cids, smiles = [], []
    if cids:
        yield cids, smiles
