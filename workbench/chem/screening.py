"""The substructure screen without false negatives: which screen-fingerprint bits a query may ask for.

The screen fingerprint (``workbench.chem.screen_fp``) hashes small subgraphs of a molecule by
atomic numbers, bond types and aromatic flags. A query is not fingerprinted as it is: a SMARTS
atom such as ``[R0;C]``, ``[X4;#7]`` or ``[v6;S]`` leaves atomic number 0 on the RDKit atom, and
RDKit's own ``PatternFingerprint(query)`` screen loses every molecule that matches it. The query is
read into a *query graph* of what every match provably has:

- an atom whose query admits one element only (read from RDKit's own query tree,
  ``DescribeQuery``: ``#7``, ``C``, ``[C;R0]``, ``[X4;#7]``, ``[N,n;H1]``…) keeps that element,
  and its aromatic flag when the query fixes it; any other atom (``*``, ``[C,N]``, ``[!C]``,
  ``[$(…)]``, ``[R]``…) is left out, with its bonds;
- a bond whose query admits one bond type only keeps that type, counting that an aromatic bond
  never has an atom required to be aliphatic at either end; any other bond (``~``, ``@``,
  ``-,=``, an implicit SMARTS bond between aromatic atoms…) is kept untyped: every match has a
  bond there, of some type;
- only the first ``MAX_SCREEN_ATOMS`` atoms are kept and no atom gets more than
  ``MAX_SCREEN_DEGREE`` bonds: a subgraph of the query is implied by every match too.

Every feature of the query graph then maps, through any match, onto one in the molecule with the
same atomic numbers, bond types and aromatic flags, provided the molecule has no query features
itself and its aromatic flags and bond types agree. ``molecule_graph`` checks that; molecules
failing it get every bit set when indexed (``molecule_screen_fps``), so every screen keeps them
(a record written ``C~C``, for example).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from rdkit import Chem

from workbench.chem.fingerprints import words
from workbench.chem.molecules import atomic_numbers
from workbench.chem.screen_fp import UNTYPED, Graph, fingerprints
from workbench.storage.index import FP_BYTES

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


# -- the query graph ------------------------------------------------------------------------
def query_graph(query: Chem.Mol) -> Graph:
    """What every match of ``query`` has, as a screen-fingerprint graph (see the module text)."""
    kept = min(query.GetNumAtoms(), MAX_SCREEN_ATOMS)
    atoms = [query.GetAtomWithIdx(i) for i in range(kept)]  # (iterating a huge query's bonds is quadratic)
    needs = [atom_need(atom) for atom in atoms]
    elements = [next(iter(need.elements)) if need.elements is not None and len(need.elements) == 1 else -1
                for need in needs]
    aromatic = [-1 if need.aromatic is None else int(need.aromatic) for need in needs]
    bonds = np.zeros((kept, kept))
    degree = [0] * kept
    for _, bond in sorted({b.GetIdx(): b for atom in atoms for b in atom.GetBonds()}.items()):
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        if i >= kept or j >= kept or degree[i] >= MAX_SCREEN_DEGREE or degree[j] >= MAX_SCREEN_DEGREE:
            continue
        degree[i] += 1
        degree[j] += 1
        kind = bond_type(bond, needs[i].aromatic is False or needs[j].aromatic is False)
        bonds[i, j] = bonds[j, i] = UNTYPED if kind is None else _bond_order(kind)
    return Graph(elements, aromatic, bonds)


@lru_cache(maxsize=None)
def _bond_order(kind: int) -> float:
    """``GetBondTypeAsDouble`` of a bond type, as the molecule side's bond matrix holds it."""
    mol = Chem.RWMol()
    mol.AddAtom(Chem.Atom(6))
    mol.AddAtom(Chem.Atom(6))
    mol.AddBond(0, 1, Chem.BondType.values[kind])
    return mol.GetBondWithIdx(0).GetBondTypeAsDouble()


@lru_cache(maxsize=64)  # by molecule object: ``substructure_query`` returns the same one per text
def query_screen(query: Chem.Mol) -> np.ndarray:
    """Fingerprint words every molecule matching ``query`` has set (all zero: no screen)."""
    fps, _ = fingerprints([query_graph(query)])  # cut off: a part of the features, still sound
    result = words(fps.tobytes())[0].copy()
    result.flags.writeable = False
    return result


# -- the molecule side ----------------------------------------------------------------------
def molecule_screenable(mol: Chem.Mol, smiles: str | None = None) -> bool:
    """True when the screen fingerprint of ``mol`` holds every bit a query graph may ask for:
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


MAX_GRAPH_ATOMS = 256  # larger molecules (rare) are not screened: their bond matrix grows as n²


def molecule_graph(mol: Chem.Mol, smiles: str | None = None) -> Graph | None:
    """Sanitised ``mol`` (parsed from ``smiles``, if given) as a screen-fingerprint graph, or None
    when it cannot be screened: ``molecule_screenable`` fails, it has more than ``MAX_GRAPH_ATOMS``
    atoms or a bond of order 0 (unspecified, ionic, zero…).

    The fingerprint reads an atom's aromatic flag off its bonds: sanitisation kekulizes (clearing
    every aromatic flag), then marks each aromatic ring's atoms and bonds together, so an atom is
    aromatic exactly when it has an aromatic bond (``tests/chem/test_screen_fp.py`` checks it over
    every test molecule). ``mol.GetAromaticAtoms()`` would tell too, but leaks memory on every call."""
    if mol.GetNumAtoms() > MAX_GRAPH_ATOMS or not molecule_screenable(mol, smiles):
        return None
    bonds = Chem.GetAdjacencyMatrix(mol, useBO=True)
    if np.count_nonzero(bonds) != 2 * mol.GetNumBonds():
        return None
    return Graph(atomic_numbers(mol, smiles), None, bonds)


def molecule_screen_fp(mol: Chem.Mol, smiles: str | None = None) -> bytes:
    """One molecule's indexed screen fingerprint, as raw bytes (``molecule_screen_fps``)."""
    return molecule_screen_fps([molecule_graph(mol, smiles)])[0].tobytes()


def molecule_screen_fps(graphs: list[Graph | None]) -> np.ndarray:
    """``(n, FP_BYTES)`` indexed screen fingerprints: every bit set where ``graphs`` holds None or
    the fingerprint was cut off, so every screen keeps those molecules."""
    out = np.full((len(graphs), FP_BYTES), 0xFF, dtype=np.uint8)
    rows = [i for i, graph in enumerate(graphs) if graph is not None]
    if rows:
        fps, cut = fingerprints([graphs[i] for i in rows])
        fps[cut] = 0xFF
        out[rows] = fps
    return out
