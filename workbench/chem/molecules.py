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


#: Text whose atoms ``Chem.MolFromSmiles`` may reorder or drop (hydrogen atoms, which it removes),
#: or that holds more than the SMILES (a CXSMILES part, a name).
_ATOMS_MAY_MOVE = re.compile(r"[|\s]|\[\d*H(?![a-z])")
#: One atom of SMILES text: a whole bracket atom, or an organic-subset one.
_ATOM_TOKEN = re.compile(r"\[[^\]]*\]|Br|Cl|[BCNOPSFIbcnops*]")
_BRACKET_ELEMENT = re.compile(r"\[\d*([A-Z][a-z]?|[a-z][a-z]?|\*)")  # after the isotope
_ELEMENTS: dict[str, int] = {}
_MAX_REMEMBERED = 100_000  # distinct atom tokens kept (atom map numbers make bracket atoms unbounded)


def atomic_numbers(mol: Chem.Mol, smiles: str | None = None) -> list[int]:
    """The atomic number of each atom of ``mol``, in order. When ``smiles``, the text ``mol`` was
    parsed from, keeps its atoms in place (``_ATOMS_MAY_MOVE``) they are read off the text, a
    fifth of the time of asking RDKit atom by atom; the count is checked against ``mol``, and any
    token that is not an element RDKit knows sends it to RDKit."""
    if smiles is not None and not _ATOMS_MAY_MOVE.search(smiles):
        tokens = _ATOM_TOKEN.findall(smiles)
        numbers = [_ELEMENTS.get(token, -1) for token in tokens]
        if -1 in numbers:
            numbers = [_element(token) for token in tokens]
        if len(numbers) == mol.GetNumAtoms() and -1 not in numbers:
            return numbers
    return [atom.GetAtomicNum() for atom in mol.GetAtoms()]


def _element(token: str) -> int:
    """Atomic number of an atom token (``Cl``, ``c``, ``[13CH3+]``, ``[se]``; -1: no element RDKit knows)."""
    if token in _ELEMENTS:
        return _ELEMENTS[token]
    bracket = _BRACKET_ELEMENT.match(token)
    symbol = bracket.group(1) if bracket else token
    if token.startswith("[") and not bracket:
        return -1
    try:
        number = 0 if symbol == "*" else Chem.GetPeriodicTable().GetAtomicNumber(symbol.capitalize())
    except RuntimeError:
        return -1
    if len(_ELEMENTS) < _MAX_REMEMBERED:
        _ELEMENTS[token] = number
    return number


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
