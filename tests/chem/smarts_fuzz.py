"""Generated SMARTS for the screen's no-false-negative proof (``test_screen_fuzz`` and
``benchmarks/chem/screen_fuzz.py``).

Two kinds of query, both over every SMARTS primitive RDKit reads — elements (aliphatic, aromatic,
``#n``), ``*``, ``a``, ``A``, ``X``, ``v``, ``R``, ``r``, ``x``, ``D``, ``H``, ``h``, charges,
isotopes, chirality, recursion ``$()``, negation, ``&`` ``,`` ``;``, every bond symbol including
ring ``@``, any ``~``, negated and combined bonds, ring closures, branches and dot-separated parts:

- *derived*: a random connected piece of a real molecule, each atom and bond written with
  primitives read off that molecule (mostly true, some negated or false), so queries have hits;
- *random*: atoms and bonds drawn freely, so odd combinations (``[R0;C]``, ``[X4;#7]``) appear.
"""

from __future__ import annotations

import random

ELEMENTS = ["C", "N", "O", "S", "P", "F", "Cl", "Br", "I", "B", "Si", "Se", "H"]
AROMATIC = ["c", "n", "o", "s", "p", "se"]
BOND_SYMBOLS = {1: "-", 2: "=", 3: "#", 12: ":"}


def _symbol(atom) -> str:
    sym = atom.GetSymbol()
    return sym.lower() if atom.GetIsAromatic() else sym


def _atom_facts(mol, atom) -> list[str]:
    """Primitives true for ``atom`` in ``mol``."""
    ring = mol.GetRingInfo()
    i = atom.GetIdx()
    facts = [_symbol(atom), f"#{atom.GetAtomicNum()}", f"X{atom.GetTotalDegree()}", f"v{atom.GetTotalValence()}",
             f"D{atom.GetDegree()}", f"H{atom.GetTotalNumHs()}", f"h{atom.GetNumImplicitHs()}",
             "a" if atom.GetIsAromatic() else "A", "*"]
    rings = ring.NumAtomRings(i)
    facts += [f"R{rings}", "R" if rings else "!R", f"x{sum(b.IsInRing() for b in atom.GetBonds())}"]
    if rings:
        facts.append(f"r{ring.MinAtomRingSize(i)}")
    charge = atom.GetFormalCharge()
    facts.append({0: "+0", 1: "+", -1: "-"}.get(charge, f"{charge:+d}"))
    return facts


def _random_primitive(rng: random.Random) -> str:
    kind = rng.randrange(15)
    if kind == 0:
        return rng.choice(ELEMENTS + AROMATIC)
    if kind == 1:
        return f"#{rng.choice([1, 5, 6, 7, 8, 9, 14, 15, 16, 17, 34, 35, 53])}"
    if kind == 2:
        return rng.choice(["*", "a", "A"])
    letter = "XvRrxDHh"[kind - 3] if kind < 11 else None
    if letter:
        low = 3 if letter == "r" else 0
        return letter + (str(rng.randint(low, 6 if letter in "Xv" else 4)) if rng.random() < 0.85 else "")
    if kind == 11:
        return rng.choice(["+", "-", "+0", "+2", "-2", "--", "++"])
    if kind == 12:
        return rng.choice(["@", "@@"])
    if kind == 13 and rng.random() < 0.4:
        return f"$({rng.choice(['C=O', '[#7]', 'c', 'C-[#8]', 'a:a', '*~*~*', '[R]', 'N-C=O', '[OH]'])})"
    if kind == 13:
        return rng.choice(["!R", "R0", "a", "A", "!#6"])
    return rng.choice(["13C", "2H", "12C", "14N", "0C"])


def _atom(rng: random.Random, facts: list[str] | None, mol=None, atom=None, depth: int = 0) -> str:
    """A bracket atom: 1-4 primitives (true facts when given, else random), joined by & , ;"""
    parts = []
    for _ in range(rng.choice([1, 1, 2, 2, 3, 4])):
        roll = rng.random()
        if facts and roll < 0.70:
            prim = rng.choice(facts)
        elif facts and roll < 0.73 and depth < 1 and mol is not None:
            prim = f"$({derived_smarts(rng, mol, atom.GetIdx(), rng.randint(1, 3), depth + 1)})"
        else:
            prim = _random_primitive(rng)
        if prim.startswith("!"):
            parts.append(prim)
            continue
        if rng.random() < 0.12:  # negate (a false fact negated stays true)
            prim = "!" + prim if not prim[0].isdigit() else prim
        parts.append(prim)
    out = parts[0]
    for prim in parts[1:]:
        out += rng.choice(["&", "&", ";", ";", ","]) + prim
    if rng.random() < 0.1 and not any(c.isdigit() for c in out[:1]):
        out += rng.choice(["@", "@@"])
    return f"[{out}]"


def _bond(rng: random.Random, bond=None) -> str:
    if bond is None:
        return rng.choice(["", "", "-", "=", "#", ":", "~", "@", "!@", "-,=", "-;!@", "!=", "=,#", ":,-", "!:", "/", "\\"])
    kind = int(bond.GetBondType())
    true = BOND_SYMBOLS.get(kind, "~")
    roll = rng.random()
    if roll < 0.35:
        return true
    if roll < 0.55:
        return ""  # implicit: single or aromatic
    if roll < 0.65:
        return "~"
    if roll < 0.75:
        return ("@" if bond.IsInRing() else "!@") + rng.choice(["", ";" + true, "&" + true])
    if roll < 0.85:
        return true + "," + rng.choice(list(BOND_SYMBOLS.values()))
    if roll < 0.92:
        return "!" + rng.choice([s for s in BOND_SYMBOLS.values() if s != true])
    return _bond(rng)


def derived_smarts(rng: random.Random, mol, start: int, size: int, depth: int = 0) -> str:
    """SMARTS for a connected piece of ``mol`` of about ``size`` atoms grown from atom ``start``."""
    chosen = [start]
    seen = {start}
    while len(chosen) < size:
        frontier = [n.GetIdx() for i in chosen for n in mol.GetAtomWithIdx(i).GetNeighbors() if n.GetIdx() not in seen]
        if not frontier:
            break
        nxt = rng.choice(frontier)
        seen.add(nxt)
        chosen.append(nxt)
    inside = set(chosen)
    children: dict[int, list[int]] = {i: [] for i in chosen}
    reached = {start}
    stack = [start]
    while stack:  # depth-first spanning tree of the piece
        i = stack.pop()
        for nb in mol.GetAtomWithIdx(i).GetNeighbors():
            j = nb.GetIdx()
            if j in inside and j not in reached:
                reached.add(j)
                children[i].append(j)
                stack.append(j)
    tree = {(min(i, j), max(i, j)) for i in children for j in children[i]}
    closures = sorted({(min(i, j), max(i, j)) for i in inside for j in inside
                       if i != j and mol.GetBondBetweenAtoms(i, j) is not None} - tree)
    digits = {edge: (str(k) if k < 10 else f"%{k}") for k, edge in enumerate(closures, 1)}
    opened: set[tuple[int, int]] = set()

    def write(i: int) -> str:
        atom = mol.GetAtomWithIdx(i)
        text = _atom(rng, _atom_facts(mol, atom), mol, atom, depth)
        for edge, digit in digits.items():
            if i in edge:
                if edge in opened:
                    text += digit
                else:
                    opened.add(edge)
                    text += _bond(rng, mol.GetBondBetweenAtoms(*edge)) + digit
        branches = [_bond(rng, mol.GetBondBetweenAtoms(i, j)) + write(j) for j in children[i]]
        for k, branch in enumerate(branches):
            text += branch if k == len(branches) - 1 else f"({branch})"
        return text

    return write(start)


def random_smarts(rng: random.Random) -> str:
    """A free-form SMARTS: a chain with branches and ring closures over random primitives."""
    n = rng.choice([1, 1, 2, 2, 3, 4, 5, 6, 8])
    text = ""
    open_rings: dict[int, int] = {}  # ring digit -> atom that opened it
    for k in range(n):
        if k:
            text += _bond(rng)
        text += _atom(rng, None) if rng.random() < 0.8 else rng.choice(["C", "N", "O", "S", "Cl", "c", "n", "o", "*"])
        if k and rng.random() < 0.2:
            text += f"({_bond(rng)}{_atom(rng, None)})"
        closable = [d for d, at in open_rings.items() if k - at >= 2]
        if closable and rng.random() < 0.4:
            text += str(closable[0])
            del open_rings[closable[0]]
        elif rng.random() < 0.2 and len(open_rings) < 2 and k < n - 2:
            digit = 1 if 1 not in open_rings else 2
            open_rings[digit] = k
            text += _bond(rng) + str(digit)
    return text


def generate(mols: list, count: int, seed: int = 0) -> list[str]:
    """``count`` SMARTS RDKit parses: about 70% derived from ``mols``, the rest random."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < count:
        if rng.random() < 0.7:
            mol = rng.choice(mols)
            text = derived_smarts(rng, mol, rng.randrange(mol.GetNumAtoms()), rng.choice([1, 2, 3, 4, 5, 6, 8, 10]))
            if rng.random() < 0.1:
                other = rng.choice(mols)
                text += "." + derived_smarts(rng, other, rng.randrange(other.GetNumAtoms()), rng.randint(1, 3))
        else:
            text = random_smarts(rng)
        if Chem.MolFromSmarts(text) is not None:
            out.append(text)
    return out
