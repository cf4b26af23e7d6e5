"""The substructure screen without false negatives: which pattern-fingerprint bits a query may ask for.

RDKit's pattern fingerprint hashes small generic subgraphs (paths, branches, rings, single atoms)
by the atomic numbers and bond types they meet, plus bits counting how often each subgraph occurs.
On a query molecule it skips subgraphs touching atoms or bonds it considers "complex", but it
hashes the ``getAtomicNum()`` the SMARTS parser left on an atom, which for ``[R0;C]``,
``[X4;#7]`` or ``[v6;S]`` is 0 rather than the element: molecules that match lack the bit, and a
screen with ``Chem.PatternFingerprint(query)`` loses them.

So the screen is not computed on the query itself but on a *screen graph* derived from it:

- an atom whose query provably admits one element only (read from RDKit's own query tree,
  ``DescribeQuery``: ``#7``, ``C``, ``[C;R0]``, ``[X4;#7]``, ``[N,n;H1]``…) becomes a plain atom
  of that element; any other atom (``*``, ``[C,N]``, ``[!C]``, ``[$(…)]``, ``[R]``…) becomes a
  null query atom, which the fingerprint skips;
- a bond whose query admits one bond type only becomes a plain bond of that type, counting that
  an aromatic bond never has an atom required to be aliphatic at either end; any other bond
  (``~``, ``@``, ``-,=``, an implicit SMARTS bond between aromatic atoms…) becomes a null query
  bond, skipped;
- only the first ``MAX_SCREEN_ATOMS`` atoms are kept and no atom gets more than
  ``MAX_SCREEN_DEGREE`` bonds: a subgraph of the query is implied by every match too, and RDKit's
  fingerprint code (recursive ring finding) crashes the process on queries of ~40,000 atoms.

Every subgraph the fingerprint hashes in the screen graph then maps, through any match, onto one
in the molecule with the same atomic numbers and bond types, and each is counted no more often
— provided the molecule has no query features itself and its aromatic flags agree with its bond
types. ``molecule_screenable`` checks that; molecules failing it get every bit set when indexed
(``molecule_pattern_fp``), so every screen keeps them (a record written ``C~C``, for example).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from rdkit import Chem

from workbench.chem.fingerprints import pattern_fp, words
from workbench.storage.index import FP_BITS, FP_BYTES

MAX_SCREEN_ATOMS = 200
MAX_SCREEN_DEGREE = 6
ALL_BITS = b"\xff" * FP_BYTES

_AROMATIC = int(Chem.BondType.AROMATIC)
_UNSPECIFIED = int(Chem.BondType.UNSPECIFIED)
_BOND_SETS = {  # RDKit's bond-order queries and the bond types each admits
    "SingleOrAromaticBond": frozenset({1, _AROMATIC}),
    "DoubleOrAromaticBond": frozenset({2, _AROMATIC}),
    "SingleOrDoubleBond": frozenset({1, 2}),
    "SingleOrDoubleOrAromaticBond": frozenset({1, 2, _AROMATIC}),
}
_LEAF = re.compile(r"^(\w+) (-?\d+) (=|!=) val$")
_COMPOSITE = re.compile(r"^(Atom|Bond)(And|Or)$")


@dataclass(frozen=True)
class AtomNeed:
    """What every atom matching a query atom has: one of ``elements`` (None: any), aromatic or not."""

    elements: frozenset[int] | None = None
    aromatic: bool | None = None


_ANY_ATOM = AtomNeed()


# -- reading RDKit's query trees ------------------------------------------------------------
def _tree(description: str) -> list[tuple[str, list]]:
    """``DescribeQuery`` text (one node per line, two spaces of indent per level) as nested nodes."""
    root: list[tuple[str, list]] = []
    stack: list[tuple[int, list]] = [(-1, root)]
    for line in description.splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // 2
        while stack[-1][0] >= depth:
            stack.pop()
        node: tuple[str, list] = (line.strip(), [])
        stack[-1][1].append(node)
        stack.append((depth, node[1]))
    return root


def _atom_need(node: tuple[str, list]) -> AtomNeed:
    text, children = node
    composite = _COMPOSITE.match(text)
    if composite:
        needs = [_atom_need(child) for child in children]
        return _and_atoms(needs) if composite.group(2) == "And" else _or_atoms(needs)
    leaf = _LEAF.match(text)
    if not leaf:
        return _ANY_ATOM  # negated composites, recursion, ranges, anything unknown: no claim
    name, value, op = leaf.group(1), int(leaf.group(2)), leaf.group(3)
    if name in ("AtomIsAromatic", "AtomIsAliphatic") and value in (0, 1):
        aromatic = (name == "AtomIsAromatic") == bool(value)
        return AtomNeed(aromatic=aromatic if op == "=" else not aromatic)
    if op != "=":
        return _ANY_ATOM
    if name == "AtomAtomicNum":
        return AtomNeed(frozenset({value}))
    if name == "AtomType":  # queryAtomType: atomic number + 1000 if aromatic
        return AtomNeed(frozenset({value % 1000 if value >= 1000 else value}), value >= 1000)
    return _ANY_ATOM


def _and_atoms(needs: list[AtomNeed]) -> AtomNeed:
    elements: frozenset[int] | None = None
    aromatic: bool | None = None
    for need in needs:
        if need.elements is not None:
            elements = need.elements if elements is None else elements & need.elements
        if need.aromatic is not None:
            if aromatic is not None and aromatic != need.aromatic:
                return _ANY_ATOM  # matches nothing: no claim needed
            aromatic = need.aromatic
    if elements is not None and not elements:
        return _ANY_ATOM
    return AtomNeed(elements, aromatic)


def _or_atoms(needs: list[AtomNeed]) -> AtomNeed:
    if not needs:
        return _ANY_ATOM
    elements: frozenset[int] | None = frozenset()
    for need in needs:
        elements = None if elements is None or need.elements is None else elements | need.elements
    flags = {need.aromatic for need in needs}
    return AtomNeed(elements, flags.pop() if len(flags) == 1 else None)


def _bond_types(node: tuple[str, list]) -> frozenset[int] | None:
    """Bond types a bond query admits (None: any)."""
    text, children = node
    composite = _COMPOSITE.match(text)
    if composite:
        sets = [_bond_types(child) for child in children]
        if composite.group(2) == "Or":
            return None if not sets or any(s is None for s in sets) else frozenset().union(*sets)
        known = [s for s in sets if s is not None]
        return frozenset.intersection(*known) if known else None
    leaf = _LEAF.match(text)
    if not leaf or leaf.group(3) != "=":
        return None
    name, value = leaf.group(1), int(leaf.group(2))
    if name == "BondOrder":
        return frozenset({value})
    if name in _BOND_SETS and value == 1:
        return _BOND_SETS[name]
    return None


def atom_need(atom: Chem.Atom) -> AtomNeed:
    """What any molecule atom matched by this query atom has, as far as can be proven."""
    if not atom.HasQuery():  # SMILES query atoms: Atom::Match compares atomic numbers
        return AtomNeed(frozenset({atom.GetAtomicNum()}))
    tree = _tree(atom.DescribeQuery())
    return _atom_need(tree[0]) if len(tree) == 1 else _ANY_ATOM


def bond_type(bond: Chem.Bond, aliphatic_end: bool) -> int | None:
    """The one bond type every molecule bond matched by this query bond has, else None."""
    if not bond.HasQuery():  # Bond::Match: equal types, or either UNSPECIFIED
        kind = int(bond.GetBondType())
        return None if kind == _UNSPECIFIED else kind
    tree = _tree(bond.DescribeQuery())
    types = _bond_types(tree[0]) if len(tree) == 1 else None
    if types is not None and aliphatic_end:
        types = types - {_AROMATIC}  # an aromatic bond joins aromatic atoms only
    return next(iter(types)) if types is not None and len(types) == 1 else None


# -- the screen graph -----------------------------------------------------------------------
def screen_graph(query: Chem.Mol) -> Chem.Mol:
    """The part of ``query`` the pattern fingerprint may hash, as plain and null-query atoms and bonds."""
    graph = Chem.RWMol()
    kept = min(query.GetNumAtoms(), MAX_SCREEN_ATOMS)
    aliphatic = []
    atoms = [query.GetAtomWithIdx(i) for i in range(kept)]  # (iterating a huge query's bonds is quadratic)
    for atom in atoms:
        need = atom_need(atom)
        aliphatic.append(need.aromatic is False)
        if need.elements is not None and len(need.elements) == 1:
            graph.AddAtom(Chem.Atom(next(iter(need.elements))))
        else:
            graph.AddAtom(Chem.AtomFromSmarts("*"))
    degree = [0] * kept
    bonds = sorted({b.GetIdx(): b for atom in atoms for b in atom.GetBonds()}.items())
    for _, bond in bonds:
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        if i >= kept or j >= kept or degree[i] >= MAX_SCREEN_DEGREE or degree[j] >= MAX_SCREEN_DEGREE:
            continue
        degree[i] += 1
        degree[j] += 1
        kind = bond_type(bond, aliphatic[i] or aliphatic[j])
        index = graph.AddBond(i, j, Chem.BondType.values[kind] if kind is not None else Chem.BondType.SINGLE) - 1
        if kind is None:
            graph.ReplaceBond(index, Chem.BondFromSmarts("~"))
        else:
            graph.GetBondWithIdx(index).SetIsAromatic(kind == _AROMATIC)
    mol = graph.GetMol()
    mol.UpdatePropertyCache(strict=False)
    Chem.FastFindRings(mol)
    return mol


@lru_cache(maxsize=64)  # by molecule object: ``substructure_query`` returns the same one per text
def query_screen(query: Chem.Mol) -> np.ndarray:
    """Fingerprint words every molecule matching ``query`` has set (all zero: no screen)."""
    if query.GetNumAtoms() == 0:
        result = np.zeros(FP_BITS // 64, dtype=np.uint64)
    else:
        result = words(pattern_fp(screen_graph(query)))[0]
    result.flags.writeable = False
    return result


# -- the molecule side ----------------------------------------------------------------------
def molecule_screenable(mol: Chem.Mol, smiles: str | None = None) -> bool:
    """True when the pattern fingerprint of ``mol`` holds every bit a screen graph may ask for:
    no query atoms or bonds, no UNSPECIFIED bonds (they match any plain query bond), aromatic flags
    that agree with bond types, aromatic bonds between aromatic atoms only (``C:C`` has one).

    ``smiles``, the text ``Chem.MolFromSmiles`` made ``mol`` from: when it is written in plain
    SMILES only (``PLAIN_SMILES``: no ``:`` bond, no ``~``, no CXSMILES part), every aromatic bond
    is one sanitisation perceived, typed and flagged together between aromatic atoms, so the bond
    checks are skipped (~25 µs a molecule, a tenth of the index build; ``tests/chem/test_screen.py``
    checks the shortcut agrees with them over every test molecule)."""
    if mol.HasQuery():
        return False
    if smiles is not None and PLAIN_SMILES.fullmatch(smiles):
        return True
    bond_at = mol.GetBondWithIdx  # not GetBonds(): its Python-level iterator costs a quarter of the loop
    for i in range(mol.GetNumBonds()):
        bond = bond_at(i)
        kind = bond.GetBondType()
        if kind == _UNSPECIFIED_TYPE or bond.GetIsAromatic() != (kind == _AROMATIC_TYPE):
            return False
    return not mol.HasSubstructMatch(_AROMATIC_BOND_TO_ALIPHATIC)


#: SMILES text of atoms in brackets or organic-subset letters, ring closures, branches, charges,
#: chirality, ``-`` ``=`` ``#`` ``/`` ``\`` bonds and ``.``: no syntax that can leave a bond's
#: aromatic flag, type or query as the text wrote it past sanitisation.
PLAIN_SMILES = re.compile(r"[A-Za-z0-9\[\]()=#+\-@/\\.%*]*")
_UNSPECIFIED_TYPE = Chem.BondType.UNSPECIFIED
_AROMATIC_TYPE = Chem.BondType.AROMATIC
_AROMATIC_BOND_TO_ALIPHATIC = Chem.MolFromSmarts("[A]:*")


def molecule_pattern_fp(mol: Chem.Mol, smiles: str | None = None) -> bytes:
    """The indexed pattern fingerprint: RDKit's, or every bit set when ``mol`` (parsed from
    ``smiles``, if given) is not screenable."""
    return pattern_fp(mol) if molecule_screenable(mol, smiles) else ALL_BITS
