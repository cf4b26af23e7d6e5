"""Input formats → validated ``CID<TAB>SMILES\\n`` lines plus rejects, streamed in chunks.

A valid record is a positive decimal CID, one TAB and a non-empty ASCII SMILES (printable,
no whitespace); a trailing ``\\r`` is stripped. Everything else is a reject with a reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

FORMATS = ("auto", "cid-smiles", "smi", "sdf")
CHUNK = 8 << 20

CID_MAX = 2**63 - 1  # CIDs are int64 everywhere (Arrow, Parquet, numpy)


def _at_most(bound: int) -> str:
    """A regex for the decimal integers from 1 to ``bound`` without leading zeros."""
    digits = str(bound)
    shorter = [f"[1-9][0-9]{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    same = [digits]  # as long as ``bound``: equal to it, or below it from some digit on
    for i, d in enumerate(digits):
        low = 1 if i == 0 else 0
        if int(d) > low:
            same.append(f"{digits[:i]}[{low}-{int(d) - 1}][0-9]{{{len(digits) - i - 1}}}")
    return "(?:" + "|".join(shorter + same) + ")"


_CID_RE = _at_most(CID_MAX).encode()
_CID = re.compile(_CID_RE)
_VALID_LINE = re.compile(_CID_RE + rb"\t[!-~]+")
# Positions (line starts) where the line is *not* a valid record; scans in C, so clean chunks cost one pass.
_INVALID_LINE = re.compile(rb"^(?!" + _CID_RE + rb"\t[!-~]+$)", re.M)
_SDF_SMILES_FIELDS = ("PUBCHEM_SMILES", "PUBCHEM_OPENEYE_ISO_SMILES", "PUBCHEM_ISOMERIC_SMILES",
                      "PUBCHEM_OPENEYE_CAN_SMILES", "PUBCHEM_CONNECTIVITY_SMILES", "SMILES")


@dataclass
class Reject:
    line: int
    reason: str
    text: bytes


@dataclass
class Chunk:
    """Valid record lines (``\\n``-terminated), how many, and the lines rejected from the same span."""

    valid: bytes
    records: int
    rejects: list[Reject] = field(default_factory=list)


def reject_reason(line: bytes) -> str:
    """Why a ``CID<TAB>SMILES`` line is not a valid record."""
    if not line.strip():
        return "blank line"
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "not valid UTF-8"
    if b"\t" not in line:
        return "no TAB between CID and SMILES"
    cid, _, smiles = line.partition(b"\t")
    if not _CID.fullmatch(cid):
        shown = cid.decode("utf-8", "replace")[:40]
        if cid.isdigit() and int(cid) > CID_MAX:
            return f"CID {shown!r} is out of range (at most {CID_MAX})"
        if cid.isdigit() and cid.startswith(b"0"):
            return f"CID {shown!r} is not a positive decimal integer (zero or leading zero)"
        return f"CID {shown!r} is not a positive decimal integer"
    if not smiles:
        return "empty SMILES"
    if not smiles.isascii():
        return "SMILES is not ASCII"
    return "SMILES contains whitespace or control characters"


_OUTSIDE_RECORDS = bytes(range(33, 127)) + b"\t\n"


def all_records_valid(block: bytes) -> int | None:
    """Vectorised check that every line of ``block`` is a valid record (the common case).

    Returns the number of lines when they all are, else None.
    """
    import numpy as np

    if block.translate(None, _OUTSIDE_RECORDS):  # a byte that is never allowed (space, control, non-ASCII)
        return None
    a = np.frombuffer(block, np.uint8)
    nl = np.flatnonzero(a == 10)
    tab = np.flatnonzero(a == 9)
    if len(tab) != len(nl) or len(nl) == 0:
        return None
    starts = np.concatenate(([0], nl[:-1] + 1))
    # tab i inside line i, after a non-empty CID and before a non-empty SMILES: one TAB per line
    if not (np.all(tab > starts) and np.all(tab < nl - 1)):
        return None
    width = tab - starts
    if width.max() > 18 or np.any(a[starts] == 48):  # maybe beyond int64 (the line check decides), or a leading zero
        return None
    for k in range(int(width.max())):
        pos = starts[width > k] + k
        if np.any((a[pos] < 48) | (a[pos] > 57)):
            return None
    return len(nl)


def check_record_lines(block: bytes, first_line: int) -> Chunk:
    """Split a block of complete ``CID<TAB>SMILES`` lines into valid lines and rejects."""
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n")
    records = all_records_valid(block)
    if records is not None:
        return Chunk(block, records)
    end = len(block) - 1  # ``block`` ends with "\n"; stop before it so "^" does not match past the end
    valid: list[bytes] = []
    rejects: list[Reject] = []
    pos, line_no = 0, first_line
    for m in _INVALID_LINE.finditer(block, 0, end):
        start = m.start()
        stop = block.index(b"\n", start)
        line_no += block.count(b"\n", pos, start)
        valid.append(block[pos:start])
        rejects.append(Reject(line_no, reject_reason(block[start:stop]), block[start:stop]))
        pos, line_no = stop + 1, line_no + 1
    valid.append(block[pos:])
    lines = b"".join(valid)
    return Chunk(lines, lines.count(b"\n"), rejects)


def line_blocks(stream: BinaryIO, size: int = CHUNK) -> Iterator[bytes]:
    """Blocks of complete lines, each ending in ``\\n`` (a final unterminated line gets one)."""
    carry = b""
    while True:
        data = stream.read(size)
        if not data:
            break
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            carry += data
            continue
        lines = data if cut == len(data) else data[:cut]
        yield carry + lines if carry else lines
        carry = data[cut:]
    if carry:
        yield carry + b"\n"


class _Raised:
    def __init__(self, exc: BaseException):
        self.exc = exc


def prefetched(blocks: Iterator[bytes], depth: int = 3) -> Iterator[bytes]:
    """Produce ``blocks`` in a background thread, at most ``depth`` ahead (memory stays flat).

    Reading and gzip decompression release the GIL, so they overlap with validating and writing.
    """
    import queue
    import threading

    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def produce() -> None:
        try:
            for block in blocks:
                if stop.is_set():
                    return
                ready.put(block)
            ready.put(end)
        except BaseException as exc:  # re-raised in the consumer
            ready.put(_Raised(exc))

    threading.Thread(target=produce, name="workbench-read", daemon=True).start()
    try:
        while (item := ready.get()) is not end:
            if isinstance(item, _Raised):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while not ready.empty():  # unblock a producer waiting on a full queue
            ready.get_nowait()


def read_cid_smiles(stream: BinaryIO) -> Iterator[Chunk]:
    line = 1
    for block in prefetched(line_blocks(stream)):
        chunk = check_record_lines(block, line)
        yield chunk
        line += chunk.records + len(chunk.rejects)  # every line is a record or a reject


def read_smi(stream: BinaryIO) -> Iterator[Chunk]:
    """``SMILES<whitespace>ID[<whitespace>anything]`` lines; the ID must be a CID."""
    line_no = 1
    for block in prefetched(line_blocks(stream)):
        out: list[bytes] = []
        rejects: list[Reject] = []
        for raw in block.split(b"\n")[:-1]:
            text = raw[:-1] if raw.endswith(b"\r") else raw
            parts = text.split(None, 2)
            if len(parts) >= 2 and _CID.fullmatch(parts[1]) and _VALID_LINE.fullmatch(parts[1] + b"\t" + parts[0]):
                out.append(parts[1] + b"\t" + parts[0] + b"\n")
            else:
                rejects.append(Reject(line_no, _smi_reason(text, parts), raw))
            line_no += 1
        yield Chunk(b"".join(out), len(out), rejects)


def _smi_reason(text: bytes, parts: list[bytes]) -> str:
    if not parts:
        return "blank line"
    if len(parts) < 2:
        return "no ID after the SMILES"
    return reject_reason(parts[1] + b"\t" + parts[0])


def read_sdf(stream: BinaryIO, smiles_field: str | None = None, batch: int = 2000) -> Iterator[Chunk]:
    """SD records → CID (PUBCHEM_COMPOUND_CID or title) and SMILES (a SMILES field, else RDKit)."""
    out: list[bytes] = []
    rejects: list[Reject] = []
    for first_line, lines in _sd_records(stream):
        cid, smiles, problem = _sd_record(lines, smiles_field)
        record = cid + b"\t" + smiles
        if problem is None and _VALID_LINE.fullmatch(record):
            out.append(record + b"\n")
        else:
            title = lines[0] if lines else b""
            rejects.append(Reject(first_line, problem or reject_reason(record), b"SD record titled " + title))
        if len(out) + len(rejects) >= batch:
            yield Chunk(b"".join(out), len(out), rejects)
            out, rejects = [], []
    if out or rejects:
        yield Chunk(b"".join(out), len(out), rejects)


def _sd_records(stream: Iterable[bytes]) -> Iterator[tuple[int, list[bytes]]]:
    lines: list[bytes] = []
    start = 1
    for number, raw in enumerate(stream, 1):
        line = raw.rstrip(b"\r\n")
        if line == b"$$$$":
            yield start, lines
            lines, start = [], number + 1
        else:
            lines.append(line)
    if any(line.strip() for line in lines):
        yield start, lines


def _sd_record(lines: list[bytes], smiles_field: str | None) -> tuple[bytes, bytes, str | None]:
    fields: dict[str, bytes] = {}
    end = next((i for i, line in enumerate(lines) if line.startswith(b"M  END")), None)
    if end is None:
        return b"", b"", "SD record has no 'M  END' line"
    i = end + 1
    while i < len(lines):
        line = lines[i]
        if line.startswith(b">") and b"<" in line and b">" in line[1:]:
            name = line[line.index(b"<") + 1: line.index(b">", line.index(b"<"))].decode("utf-8", "replace")
            j = i + 1
            while j < len(lines) and lines[j].strip():
                j += 1
            fields[name] = b"\n".join(lines[i + 1: j]).strip()
            i = j
        i += 1
    cid = fields.get("PUBCHEM_COMPOUND_CID") or lines[0].strip()
    if not _CID.fullmatch(cid):
        return cid, b"", f"no PubChem CID (PUBCHEM_COMPOUND_CID field or numeric title), title {lines[0][:40]!r}"
    names = (smiles_field,) if smiles_field else ()
    smiles = next((fields[n] for n in (*names, *_SDF_SMILES_FIELDS) if n and fields.get(n)), None)
    if smiles is None:
        smiles = _smiles_from_molblock(b"\n".join(lines[: end + 1]))
        if smiles is None:
            return cid, b"", "RDKit cannot read the molblock"
    return cid, smiles, None


def _smiles_from_molblock(molblock: bytes) -> bytes | None:
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromMolBlock(molblock.decode("utf-8", "replace"))
    return Chem.MolToSmiles(mol).encode() if mol is not None else None


def sniff_format(name: str, head: bytes) -> str:
    """Guess the format from the file name, then from the first bytes."""
    base = name.lower().removesuffix(".gz")
    if base.endswith((".smi", ".smiles", ".ism", ".can")):
        return "smi"
    if base.endswith((".sdf", ".sd", ".mol")):
        return "sdf"
    if b"\nM  END" in head or b"$$$$" in head or b"V2000" in head or b"V3000" in head:
        return "sdf"
    first = next((line for line in head.splitlines() if line.strip()), b"")
    if re.match(rb"\d+\t", first):
        return "cid-smiles"
    return "smi" if re.match(rb"\S+[ \t]+\d+", first) else "cid-smiles"
