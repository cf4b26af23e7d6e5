"""The chemistry index: one Arrow IPC file per shard at ``ShardInfo.index_path``.

Format ``workbench-chem-index`` version 2, built for the cold, memory-bound case: the file is
uncompressed and memory-mapped, so a search reads fingerprints straight from the page cache (no
decompression, no copy into the process: file-backed pages, not anonymous memory) and touches a
molecule's pickle only when it survives the screen. Record batches of up to ``BATCH_ROWS`` rows,
in shard order; each batch holds, one row per shard line:

================  ===========================  ==============================================
cid               int64                        the record's CID
smiles            string                       the SMILES as stored in the shard
mol               binary (null: unparsable)    RDKit binary pickle of ``Chem.MolFromSmiles``
p00 … p31         uint64                       screen fingerprint (2048 bits, ``chem.screen_fp``),
                                               word ``j`` of every row: the screen's layout
morgan_row        uint32                       Morgan (radius 2, 2048 bits) in popcount order:
morgan_count      uint16                       position ``k`` holds batch row ``morgan_row[k]``,
m000 … m255       uint8                        its popcount (ascending; unparsable rows last,
                                               ``NO_MORGAN``) and byte ``b`` of its fingerprint
================  ===========================  ==============================================

Records RDKit cannot parse keep their row with null ``mol`` and zero fingerprints: they are
counted and listed, never dropped. The schema's key-value metadata ``workbench.index`` holds the
parameters and the sha256 of the shard it was built from; the manifest's ``index`` dict holds the
same parameters plus, per shard, ``sha256`` (of the shard), ``records``, ``invalid`` and the index
file's own ``file_sha256`` and ``file_bytes``. Workers check a file against those before using it
(``index_file_problem``): a damaged, truncated or swapped file is never read; its shard is searched
by parsing its text, with a note.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.errors import ChemIndexError
from workbench.storage.integrity import has_digest, sha256_remembered
from workbench.storage.manifest import Manifest, ShardInfo

if TYPE_CHECKING:
    import pyarrow as pa

INDEX_FORMAT = "workbench-chem-index"
INDEX_VERSION = 2
META_KEY = b"workbench.index"
INVALID_LIST = "index/invalid.tsv"
BATCH_ROWS = 65_536  # rows per record batch: the unit of building (bounded memory) and of search

FP_BITS = 2048
FP_BYTES = FP_BITS // 8
FP_WORDS = FP_BITS // 64
PATTERN_COLUMNS = [f"p{j:02d}" for j in range(FP_WORDS)]
MORGAN_COLUMNS = [f"m{b:03d}" for b in range(FP_BYTES)]
NO_MORGAN = FP_BITS + 1  # ``morgan_count`` of an unparsable row: sorts after every popcount

#: The fingerprints the index holds; an index built with other values is refused.
FINGERPRINTS = {
    # "unscreenable": molecules with query features get every bit (workbench.chem.screening)
    "screen": {"kind": "workbench-subgraphs", "version": 1, "path_bonds": 5, "fpSize": FP_BITS,
               "unscreenable": "all-bits"},
    "morgan": {"kind": "morgan", "radius": 2, "fpSize": FP_BITS},
}


def index_params() -> dict[str, Any]:
    """What an index must have been built with for this workbench to search it."""
    import rdkit

    return {"format": INDEX_FORMAT, "version": INDEX_VERSION, "rdkit": rdkit.__version__,
            "fingerprints": FINGERPRINTS}


def incompatibility(recorded: dict[str, Any] | None) -> str | None:
    """Why an index with ``recorded`` parameters cannot be searched here, or None if it can."""
    if not recorded:
        return None
    want = index_params()
    if recorded.get("format") != INDEX_FORMAT or recorded.get("version") != INDEX_VERSION:
        return f"index format {recorded.get('format')} v{recorded.get('version')} (this workbench reads v{INDEX_VERSION})"
    if _release(recorded.get("rdkit")) != _release(want["rdkit"]):
        return f"the index was built with RDKit {recorded.get('rdkit')}, this is RDKit {want['rdkit']}"
    if recorded.get("fingerprints") != want["fingerprints"]:
        return (f"the index was built with the fingerprints {_kinds(recorded.get('fingerprints'))}; "
                f"this workbench reads {_kinds(want['fingerprints'])}")
    return None


def _kinds(fingerprints: Any) -> str:
    """Fingerprint parameters in a few words: ``screen (workbench-subgraphs version 1 …), morgan (…)``."""
    if not isinstance(fingerprints, dict) or not fingerprints:
        return "(none)"
    return ", ".join(f"{name} ({' '.join(str(v) if k == 'kind' else f'{k} {v}' for k, v in params.items())})"
                     if isinstance(params, dict) else str(name) for name, params in fingerprints.items())


def _release(version: Any) -> str:
    """RDKit release (``2026.09``): fingerprint definitions only change between releases."""
    return ".".join(str(version).split(".")[:2])


def check_index(manifest: Manifest) -> None:
    """Refuse to search an index built with incompatible parameters."""
    reason = incompatibility(manifest.index)
    if reason:
        raise ChemIndexError(f"cannot use the chemistry index: {reason}; re-run `workbench index` to rebuild it")


def index_schema() -> "pa.Schema":
    import pyarrow as pa

    return pa.schema([("cid", pa.int64()), ("smiles", pa.string()), ("mol", pa.binary()),
                      *[(name, pa.uint64()) for name in PATTERN_COLUMNS],
                      ("morgan_row", pa.uint32()), ("morgan_count", pa.uint16()),
                      *[(name, pa.uint8()) for name in MORGAN_COLUMNS]])


def open_index(index_path: str) -> "pa.ipc.RecordBatchFileReader":
    """The index file, memory-mapped (its pages stay file-backed: the page cache, not this process)."""
    import pyarrow as pa

    return pa.ipc.open_file(pa.memory_map(index_path, "r"))


def index_rows(index_path: str) -> "pa.Table":
    """An index file as one row per record, in shard order: ``cid``, ``smiles``, ``mol`` and the
    ``pattern`` and ``morgan`` fingerprints as raw bytes (``FP_BYTES`` each; zero when unparsable).
    For inspection and tests: searches read the mapped columns directly."""
    import numpy as np
    import pyarrow as pa

    from workbench.util.arrow import numpy_view

    parts = []
    for batch in open_index(index_path).read_all().to_batches():
        n = batch.num_rows
        screen = np.stack([numpy_view(batch.column(c)) for c in PATTERN_COLUMNS], axis=1).astype("<u8")
        morgan = np.empty((n, FP_BYTES), dtype=np.uint8)
        morgan[numpy_view(batch.column("morgan_row"))] = np.stack([numpy_view(batch.column(c)) for c in MORGAN_COLUMNS], axis=1)
        fixed = pa.binary(FP_BYTES)
        parts.append(pa.table({
            "cid": batch.column("cid"), "smiles": batch.column("smiles"), "mol": batch.column("mol"),
            "screen": pa.FixedSizeBinaryArray.from_buffers(fixed, n, [None, pa.py_buffer(screen.tobytes())]),
            "morgan": pa.FixedSizeBinaryArray.from_buffers(fixed, n, [None, pa.py_buffer(morgan.tobytes())])}))
    schema = pa.schema([("cid", pa.int64()), ("smiles", pa.string()), ("mol", pa.binary()),
                        ("screen", pa.binary(FP_BYTES)), ("morgan", pa.binary(FP_BYTES))])
    return pa.concat_tables(parts) if parts else pa.Table.from_batches([], schema=schema)


def read_index_meta(index_path: str) -> dict[str, Any] | None:
    """The ``workbench.index`` metadata of one index file, or None if absent or unreadable."""
    try:
        meta = open_index(index_path).schema.metadata or {}
        return json.loads(meta[META_KEY])
    except Exception:  # missing, no metadata key, bad JSON, or ArrowInvalid for a truncated file
        return None


def built_entry(root: Path, shard: ShardInfo, invalid: int) -> dict[str, Any]:
    """The manifest's ``index`` entry for a shard whose index file was just written."""
    path = root / shard.index_path
    try:
        digest, size = sha256_remembered(path), path.stat().st_size
    except OSError as exc:
        raise ChemIndexError(f"shard {shard.name}: cannot read the index file just built at {path} "
                          f"({exc.strerror or exc}); build the index where the dataset lives") from None
    return {"sha256": shard.sha256, "records": shard.records, "invalid": invalid,
            "file_sha256": digest, "file_bytes": size}


def index_file_problem(index_path: str, shard: ShardInfo, rehash: bool = False) -> str | None:
    """Why the index file at ``index_path`` must not be read for ``shard`` (None: it may).

    The file must have the size and sha256 the manifest recorded when it was built from these
    exact shard bytes, and its own metadata must agree. The sha256 is computed once per file
    version per machine (``has_digest``), or again with ``rehash``. ``shard.index_sha256`` is None
    when the manifest vouches for no index file (the shard is not indexed): then the answer is ``""``.
    """
    if not shard.index_sha256:
        return ""
    where = f"shard {shard.name}: its index file {shard.index_path}"
    try:
        size = os.stat(index_path).st_size
    except OSError as exc:
        return f"{where} cannot be read ({exc.strerror or exc})"
    if size != shard.index_bytes:
        return f"{where} is damaged or was replaced ({size:,} bytes, {shard.index_bytes:,} when it was built)"
    try:
        if rehash:
            intact = sha256_remembered(index_path) == shard.index_sha256
        else:
            intact = has_digest(index_path, shard.index_sha256)
    except OSError as exc:
        return f"{where} cannot be read ({exc.strerror or exc})"
    if not intact:
        return f"{where} is damaged or was replaced (its sha256 differs from the one recorded when it was built)"
    meta = read_index_meta(index_path)
    if not meta or incompatibility(meta) or meta.get("shard_sha256") != shard.sha256:
        return f"{where} was not built from this shard"
    return None


# -- incremental builds (client side) -----------------------------------------------------
def stale_shards(root: Path, manifest: Manifest, force: bool = False) -> list[ShardInfo]:
    """Shards whose index file is missing, damaged (size or sha256 not as recorded), built from
    other bytes or with other parameters."""
    if force or not manifest.index or incompatibility(manifest.index):
        return list(manifest.shards)
    return [s for s in manifest.shards if index_file_problem(str(root / s.index_path), s, rehash=True) is not None]


def record_built(manifest: Manifest, built: dict[str, dict[str, Any]], reset: bool) -> None:
    """Merge per-shard build results into ``manifest.index`` (dropping shards no longer present)."""
    previous = {} if reset or not manifest.index else dict(manifest.index.get("shards", {}))
    previous.update(built)
    names = {s.name for s in manifest.shards}
    manifest.index = {**index_params(), "shards": {k: v for k, v in previous.items() if k in names}}
    manifest.attach_index_files()


#: A partial index file (``<index>.tmp-PID``) untouched this long is a killed build's: a live build
#: writes a record batch at least every few minutes, even on a Raspberry Pi 2.
PARTIAL_STALE_SECONDS = 3600.0


def partial_path(index_path: str) -> str:
    """Where a build writes ``index_path`` before renaming it into place (one per process)."""
    return f"{index_path}.tmp-{os.getpid()}"


def remove_stale_partials(index_path: str, older_than: float = PARTIAL_STALE_SECONDS) -> list[str]:
    """Delete partial files of ``index_path`` that killed builds left (unmodified for ``older_than``
    s); their names. A partial file being written by a live build is left alone."""
    directory, name = os.path.split(index_path)
    removed = []
    try:
        entries = list(os.scandir(directory or "."))
    except OSError:  # no index directory yet
        return removed
    now = time.time()
    for entry in entries:
        if entry.name.startswith(f"{name}.tmp-") and entry.is_file(follow_symlinks=False):
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime > older_than:
                    os.unlink(entry.path)
                    removed.append(entry.name)
            except OSError:  # another build removed it first, or a read-only index: the build says so
                pass
    return removed


def remove_superseded(root: Path, manifest: Manifest) -> None:
    """Delete the format-1 files (``index/<shard>.parquet``) of shards the index now covers."""
    for shard in manifest.shards:
        if shard.index_sha256:
            old = root / "index" / f"{shard.name}.parquet"
            if old.is_file() and not old.is_symlink():
                old.unlink()


def invalid_records(root: Path, manifest: Manifest) -> "pa.Table":
    """Every record RDKit cannot parse, over all indexed shards, as a table of cid, smiles."""
    import pyarrow as pa
    import pyarrow.compute as pc

    tables = []
    for shard in manifest.shards:
        path = root / shard.index_path
        if shard.index_sha256 and (manifest.index or {}).get("shards", {}).get(shard.name, {}).get("invalid"):
            t = open_index(str(path)).read_all().select(["cid", "smiles", "mol"])
            tables.append(t.filter(pc.is_null(t["mol"])).select(["cid", "smiles"]))
    schema = pa.schema([("cid", pa.int64()), ("smiles", pa.string())])
    return pa.concat_tables(tables) if tables else pa.Table.from_batches([], schema=schema)


def write_invalid_list(root: Path, table: "pa.Table") -> Path:
    """``index/invalid.tsv``: ``CID<TAB>SMILES`` of every unparsable record."""
    path = root / INVALID_LIST
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as fh:
        for cid, smi in zip(table["cid"].to_pylist(), table["smiles"].to_pylist()):
            fh.write(f"{cid}\t{smi}\n")
    return path


def coverage_note(manifest: Manifest) -> str | None:
    """For searches: refuse an incompatible index; say when shards will be parsed from text."""
    check_index(manifest)
    if not manifest.index:
        return "no chemistry index: parsing every SMILES (`workbench index` would make this search faster)"
    missing = sum(not s.index_sha256 for s in manifest.shards)
    if missing:
        return (f"{missing} of {len(manifest.shards)} shards are not indexed: parsing their SMILES "
                "(re-run `workbench index` to index them)")
    return None
