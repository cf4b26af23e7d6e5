"""Integrity of a dataset's files: containment, sizes and sha256 digests.

A manifest may come from someone else, so every path it names is checked before anything reads
it: a shard's file and its index file must resolve inside the dataset directory — relative, no
``..``, no symbolic link leading out — and shard names must be plain file names (they name index
files and node-side files). Placement roots (where nodes keep their copies) must be plain absolute
paths; that they lie inside each node's ``data_dir`` or ``shared_dir`` is checked by the cluster
layer, which knows the nodes. ``check_sizes`` is the cheap check every run makes (one ``stat`` per
shard); ``verify_local`` hashes every file (``workbench verify``).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from workbench.errors import DatasetError

if TYPE_CHECKING:
    from workbench.storage.manifest import Manifest, ShardInfo

#: A shard name or node-side dataset directory name: one plain path component.
PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=-]{0,254}$")
#: The key under ``manifest.index["shards"][NAME]`` holding the sha256 of that shard's index file.
INDEX_DIGEST_KEY = "file_sha256"
#: Files changed this recently are hashed again each time (``has_digest``).
RACY_SECONDS = 2


# -- containment ---------------------------------------------------------------------------
def contained(root: Path, rel: Any, what: str) -> Path:
    """``root / rel``, refused with a ``DatasetError`` naming ``what`` unless it stays inside ``root``."""
    if not isinstance(rel, str) or not rel:
        raise DatasetError(f"{what}: the manifest gives no file path (refused)")
    if "\x00" in rel or "\\" in rel:
        raise DatasetError(f"{what}: path {rel!r} is not a plain relative path (refused)")
    parts = PurePosixPath(rel)
    if parts.is_absolute() or rel.startswith("~"):
        raise DatasetError(f"{what}: path {rel!r} is absolute; a manifest may only name files inside the dataset (refused)")
    if ".." in parts.parts:
        raise DatasetError(f"{what}: path {rel!r} leads out of the dataset with '..' (refused)")
    base = root.resolve()
    full = base / rel
    target = full.resolve()  # follows every symbolic link on the way
    if not target.is_relative_to(base):
        raise DatasetError(f"{what}: {rel} is a symbolic link leading out of the dataset (to {target}; refused)")
    return full


def check_paths(root: Path, manifest: "Manifest") -> None:
    """Refuse a manifest naming any file outside ``root`` (shards, index files) or odd placement roots."""
    for shard in manifest.shards:
        if not isinstance(shard.name, str) or not PLAIN_NAME.match(shard.name):
            raise DatasetError(f"shard {shard.name!r}: a shard name must be a plain file name (refused)")
        contained(root, shard.path, f"shard {shard.name}")
        contained(root, shard.index_path, f"shard {shard.name} (index file)")
    contained(root, "index/invalid.tsv", "the index directory")
    check_placement_record(manifest.placement)


def check_placement_record(placement: dict[str, Any] | None) -> None:
    """Placement roots are plain absolute node paths (no ``..``); its dataset id a plain name."""
    if not placement:
        return
    ident = placement.get("dataset_id")
    if ident is not None and (not isinstance(ident, str) or not PLAIN_NAME.match(ident)):
        raise DatasetError(f"placement: dataset id {ident!r} is not a plain directory name (refused)")
    for key in ("roots", "shared_roots"):
        roots = placement.get(key) or {}
        if not isinstance(roots, dict):
            raise DatasetError(f"placement: `{key}` must map node names to paths (refused)")
        for node, root in roots.items():
            if not plain_absolute(root):
                raise DatasetError(f"placement: node {node!r} root {root!r} is not a plain absolute path (refused)")


def plain_absolute(path: Any) -> bool:
    """An absolute POSIX path in normal form, without ``..`` (``/srv/workbench/ds``)."""
    return (isinstance(path, str) and path.startswith("/") and "\x00" not in path
            and posixpath.normpath(path) == path and ".." not in path.split("/"))


def inside(base: str, path: str) -> bool:
    """Whether the plain absolute ``path`` lies strictly inside the directory ``base`` (both node paths)."""
    return plain_absolute(path) and path.startswith(base.rstrip("/") + "/")


# -- sizes (every run) ---------------------------------------------------------------------
def check_sizes(root: Path, manifest: "Manifest") -> None:
    """One ``stat`` per shard: a missing shard or one whose size differs from the manifest is refused."""
    for shard in manifest.shards:
        path = root / shard.path
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise DatasetError(f"shard {shard.name}: {shard.path} is missing; {_advice(root)}") from None
        except OSError as exc:
            raise DatasetError(f"shard {shard.name}: cannot read {shard.path}: {exc.strerror}; {_advice(root)}") from None
        if not stat.S_ISREG(st.st_mode):
            raise DatasetError(f"shard {shard.name}: {shard.path} is not a regular file; {_advice(root)}")
        if st.st_size != shard.bytes:
            raise DatasetError(f"shard {shard.name}: {shard.path} is {st.st_size:,} bytes but the manifest says "
                               f"{shard.bytes:,} (changed or corrupted); {_advice(root)}")


def _advice(root: Path) -> str:
    return f"run `workbench verify --dataset {root}` or re-ingest the dataset"


# -- digests (`workbench verify`) ----------------------------------------------------------
def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file (hashlib reads it in blocks, releasing the GIL)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def has_digest(path: str | os.PathLike[str], sha256: str) -> bool:
    """Whether the file at ``path`` has the digest ``sha256``, hashing each file version once per
    machine: a digest is remembered under ``cache_dir()/hashed/``, keyed by the file's identity
    (real path, device, inode, size, mtime and ctime — any write, replacement or ``touch`` makes a
    new version, and ctime cannot be set back), so the next process only ``stat``s the file.
    Rot on the medium under an unchanged inode is what ``workbench verify`` finds."""
    try:
        if _stamp(path, os.stat(path), sha256).exists():
            return True
    except OSError:  # no stat, or no cache directory: hash (a missing file raises there)
        pass
    return sha256_remembered(path) == sha256


def sha256_remembered(path: str | os.PathLike[str]) -> str:
    """``sha256_file``, remembering the digest of the version hashed (see ``has_digest``): only
    when the file's identity is the same before and after hashing, and it has not changed within
    the last ``RACY_SECONDS`` (a second write in the same clock tick would keep its times)."""
    before = os.stat(path)
    digest = sha256_file(path)
    after = os.stat(path)
    settled = time.time_ns() - max(after.st_mtime_ns, after.st_ctime_ns) >= RACY_SECONDS * 1e9
    if settled and _identity(before) == _identity(after):
        try:
            stamp = _stamp(path, after, digest)
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.touch()
        except OSError:  # a read-only home: hashed again next time
            pass
    return digest


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _stamp(path: str | os.PathLike[str], st: os.stat_result, sha256: str) -> Path:
    from workbench.util.downloads import cache_dir

    key = "\0".join(map(str, (os.path.realpath(path), *_identity(st), sha256)))
    return cache_dir() / "hashed" / hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class Problem:
    """One file that is not what the manifest says, where (``node``: None for this machine)."""

    shard: str
    file: str
    problem: str
    node: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return f"{self.shard}\t{self.node or 'local'}\t{self.file}\t{self.problem}"


@dataclass(frozen=True)
class Expected:
    """A file to check: its path relative to the dataset, the shard it belongs to, its sha256."""

    shard: str
    rel: str
    sha256: str | None  # None: an index file whose digest was not recorded
    built_from: str | None = None  # for index files: the sha256 of the shard it must be built from


def expected_files(root: Path, manifest: "Manifest") -> list[Expected]:
    """Every shard file and every index file the manifest says was built, with their digests."""
    built = (manifest.index or {}).get("shards", {}) if manifest.index else {}
    files = []
    for shard in manifest.shards:
        files.append(Expected(shard.name, shard.path, shard.sha256))
        entry = built.get(shard.name)
        if entry and entry.get("sha256") == shard.sha256:
            files.append(Expected(shard.name, shard.index_path, entry.get(INDEX_DIGEST_KEY), shard.sha256))
    return files


def verify_local(root: Path, manifest: "Manifest", threads: int = 2) -> tuple[list[Expected], list[Problem]]:
    """Hash every expected file here; returns what was checked and every problem found."""
    files = expected_files(root, manifest)
    with ThreadPoolExecutor(max(1, threads)) as pool:  # hashlib releases the GIL on large blocks
        found = list(pool.map(lambda f: _check_local(root, f), files))
    return files, [p for p in found if p is not None]


def _check_local(root: Path, f: Expected) -> Problem | None:
    path = root / f.rel
    try:
        digest = sha256_remembered(path)  # a later search need not hash this version again
    except FileNotFoundError:
        return Problem(f.shard, f.rel, "missing")
    except OSError as exc:
        return Problem(f.shard, f.rel, f"unreadable: {exc.strerror}")
    if f.sha256 is not None:
        return None if digest == f.sha256 else Problem(f.shard, f.rel, "sha256 mismatch")
    from workbench.storage.index import read_index_meta  # no digest recorded: the file must say what it indexes

    meta = read_index_meta(str(path))
    if meta is None:
        return Problem(f.shard, f.rel, "unreadable index file")
    if meta.get("shard_sha256") != f.built_from:
        return Problem(f.shard, f.rel, "index built from other shard bytes")
    return None


def check_task_files(root: str, shard: "ShardInfo", where: str) -> None:
    """Where a shard task runs (``where``: the node): its files resolve inside ``root``, the shard has its size."""
    base = os.path.realpath(root)
    for rel in (shard.path, shard.index_path):
        target = os.path.realpath(os.path.join(root, rel))
        if os.path.commonpath([base, target]) != base:
            raise DatasetError(f"{rel} on {where} is a symbolic link leading out of {root} (to {target}; refused)")
    try:
        size = os.stat(os.path.join(root, shard.path)).st_size
    except FileNotFoundError:
        raise DatasetError(f"{shard.path} is missing on {where} (under {root}); re-run `workbench place`") from None
    if size != shard.bytes:
        raise DatasetError(f"{shard.path} on {where} is {size:,} bytes but the manifest says {shard.bytes:,}; "
                           f"run `workbench verify` (and `workbench place` to repair it)")
