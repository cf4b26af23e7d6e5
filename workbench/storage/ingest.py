"""``workbench ingest``: stream sources into checksummed plain-text shards, atomically."""

from __future__ import annotations

import datetime as _dt
import errno
import gzip
import hashlib
import io
import os
import shutil
import sys
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from workbench.errors import DatasetError, IngestError, WorkbenchError
from workbench.storage.formats import FORMATS, Chunk, read_cid_smiles, read_sdf, read_smi, sniff_format
from workbench.storage.manifest import Manifest, ShardInfo, read_manifest, write_manifest
from workbench.util.sizes import parse_bytes

Source = str | os.PathLike[str] | BinaryIO
REJECTS_NAME = "rejects.tsv"


WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def shard_limit(text: str | int) -> int:
    """The shard size in bytes: '64MB' → 64_000_000; '32kB', '1GiB' and plain integers work too."""
    value = parse_bytes(text)
    if value < 1000:
        raise WorkbenchError(f"shard size {text!r} is too small (at least 1kB)")
    return value


class ShardWriter:
    """Writes record lines into shards of at most ``limit`` bytes, cut on line boundaries."""

    def __init__(self, directory: Path, limit: int):
        self.directory, self.limit = directory, limit
        (directory / "shards").mkdir(parents=True)
        self.shards: list[ShardInfo] = []
        self._fh: BinaryIO | None = None

    def _open(self) -> None:
        self._name = f"shard-{len(self.shards):05d}"
        self._path = f"shards/{self._name}.tsv"
        self._fh = open(self.directory / self._path, "wb")
        self._hash, self._bytes, self._records = hashlib.sha256(), 0, 0
        self._ascii = True
        self._first: bytes | None = None
        self._last = b""

    def _close_shard(self) -> None:
        assert self._fh is not None
        self._fh.close()
        self.shards.append(ShardInfo(self._name, self._path, self._records, self._bytes, self._hash.hexdigest(),
                                     int(self._first or 0), int(self._last), self._ascii))
        self._fh = None

    def write(self, data: bytes, records: int) -> None:
        """Append ``records`` complete ``\\n``-terminated lines, starting new shards as needed."""
        while data:
            if self._fh is None:
                self._open()
            room = self.limit - self._bytes
            if len(data) <= room:
                piece, data, count = data, b"", records
            else:
                cut = data.rfind(b"\n", 0, room) + 1
                if cut == 0 and self._bytes == 0:  # one line longer than a shard: it gets a shard of its own
                    cut = data.index(b"\n") + 1
                if cut == 0:
                    self._close_shard()
                    continue
                piece, data = data[:cut], data[cut:]
                count = piece.count(b"\n")  # only a block cut across two shards is counted again
                records -= count
            self._fh.write(piece)  # type: ignore[union-attr]
            self._hash.update(piece)
            self._ascii = self._ascii and piece.isascii()
            self._bytes += len(piece)
            self._records += count
            if self._first is None:
                self._first = piece[: piece.index(b"\t")]
            last_start = piece.rfind(b"\n", 0, len(piece) - 1) + 1
            self._last = piece[last_start: piece.index(b"\t", last_start)]
            if data:
                self._close_shard()

    def close(self) -> list[ShardInfo]:
        if self._fh is not None:
            self._close_shard()
        return self.shards


@contextmanager
def open_source(source: Source) -> Iterator[tuple[str, BinaryIO]]:
    """Open a path, ``-`` (stdin) or a binary stream; gzip is detected from the magic bytes."""
    if isinstance(source, (str, os.PathLike)) and str(source) == "-":
        name, raw, owned = "<stdin>", sys.stdin.buffer, False
    elif isinstance(source, (str, os.PathLike)):
        name = str(source)
        try:
            raw, owned = open(source, "rb"), True
        except FileNotFoundError:
            raise IngestError(f"source {name!r} does not exist") from None
        except OSError as exc:
            raise IngestError(f"cannot read source {name!r}: {exc.strerror or exc}") from None
    else:
        name, raw, owned = getattr(source, "name", "<stream>"), source, False
    buffered = raw if hasattr(raw, "peek") else io.BufferedReader(raw)  # type: ignore[arg-type]
    try:
        if buffered.peek(2)[:2] == b"\x1f\x8b":  # type: ignore[attr-defined]
            yield name, io.BufferedReader(gzip.GzipFile(fileobj=buffered, mode="rb"), buffer_size=1 << 20)  # type: ignore[arg-type]
        else:
            yield name, buffered  # type: ignore[misc]
    finally:
        if owned:
            raw.close()


def resolve_format(stream: BinaryIO, name: str, fmt: str) -> str:
    """The format to read ``stream`` as: ``fmt``, or a guess from the name and first bytes."""
    return sniff_format(name, stream.peek(65536)[:65536]) if fmt == "auto" else fmt  # type: ignore[attr-defined]


def _chunks(stream: BinaryIO, fmt: str, smiles_field: str | None) -> Iterator[Chunk]:
    if fmt == "cid-smiles":
        return read_cid_smiles(stream)
    if fmt == "smi":
        return read_smi(stream)
    return read_sdf(stream, smiles_field)


def _escape(text: bytes) -> str:
    """A rejected line, reversibly escaped for one TSV cell (\\\\, \\t, \\r, \\n, \\xNN)."""
    text = text.replace(b"\\", b"\\\\").replace(b"\t", b"\\t").replace(b"\r", b"\\r").replace(b"\n", b"\\n")
    return text.decode("utf-8", "backslashreplace")


def ingest(sources: Sequence[Source] | Source, dataset_dir: str | os.PathLike[str], shard_size: str | int = "64MB",
           format: str = "auto", force: bool = False, smiles_field: str | None = None) -> Path:
    """Shard ``sources`` into ``dataset_dir``; returns the dataset directory.

    Builds into a temporary sibling directory and renames it at the end, so a failed or
    interrupted ingest leaves nothing behind. Rejected lines go to ``rejects.tsv``.
    """
    if isinstance(sources, (str, os.PathLike)) or hasattr(sources, "read"):
        sources = [sources]  # type: ignore[list-item]
    if format not in FORMATS:
        raise WorkbenchError(f"unknown format {format!r} (choose from {', '.join(FORMATS)})")
    if not sources:
        raise WorkbenchError("no sources given")
    target = Path(dataset_dir)
    limit = shard_limit(shard_size)
    if target.exists() and not force:
        raise IngestError(f"{str(target)!r} already exists (use --force to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        manifest = _build(sources, tmp, limit, format, smiles_field)
        if target.exists():
            keep_index_files(target, tmp, manifest)
            old = target.parent / f".{target.name}.old-{os.getpid()}"
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except OSError as exc:  # writing failed (full disk, quota, read-only): a clean error, nothing left
        shutil.rmtree(tmp, ignore_errors=True)
        raise IngestError(f"cannot write dataset {str(target)!r}: {exc.strerror or exc}; no dataset written") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    del manifest
    return target


def keep_index_files(old: Path, new: Path, manifest: Manifest) -> int:
    """Re-ingest (``--force``): carry over the chemistry index files of ``old`` whose shard bytes
    (sha256) are unchanged and whose file is intact, so ``workbench index`` builds only the rest.
    Returns how many shards keep their index; updates ``manifest`` on disk."""
    from workbench.storage.index import index_file_problem, invalid_records, write_invalid_list

    try:
        previous = read_manifest(old)
    except DatasetError:
        return 0
    by_sha = {s.sha256: s for s in previous.shards if s.index_sha256}
    kept: dict[str, dict[str, Any]] = {}
    for shard in manifest.shards:
        was = by_sha.get(shard.sha256)
        if was is None or index_file_problem(str(old / was.index_path), was) is not None:
            continue
        target = new / shard.index_path
        target.parent.mkdir(exist_ok=True)
        try:
            os.link(old / was.index_path, target)
        except OSError:
            shutil.copyfile(old / was.index_path, target)
        kept[shard.name] = dict(previous.index["shards"][was.name])  # type: ignore[index]
    if kept:
        manifest.index = {**{k: v for k, v in previous.index.items() if k != "shards"}, "shards": kept}  # type: ignore[union-attr]
        manifest.attach_index_files()
        write_manifest(new, manifest)
        write_invalid_list(new, invalid_records(new, manifest))
    return len(kept)


def _build(sources: Sequence[Source], tmp: Path, limit: int, fmt: str, smiles_field: str | None) -> Manifest:
    tmp.mkdir()
    writer = ShardWriter(tmp, limit)
    names: list[str] = []
    formats: list[str] = []
    rejected = 0
    with open(tmp / REJECTS_NAME, "w", encoding="utf-8") as rejects:
        rejects.write("source\tline\treason\ttext\n")
        for source in sources:
            with open_source(source) as (name, stream):
                names.append(name)
                try:
                    formats.append(resolve_format(stream, name, fmt))
                    for chunk in _chunks(stream, formats[-1], smiles_field):
                        writer.write(chunk.valid, chunk.records)
                        for r in chunk.rejects:
                            rejects.write(f"{name}\t{r.line}\t{r.reason}\t{_escape(r.text)}\n")
                        rejected += len(chunk.rejects)
                except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
                    raise IngestError(f"{name}: corrupt or truncated gzip data ({exc}); no dataset written") from None
                except OSError as exc:
                    if exc.errno in WRITE_ERRORS:
                        raise  # the dataset could not be written: reported as such by `ingest`
                    raise IngestError(f"{name}: read error: {exc}; no dataset written") from None
    shards = writer.close()
    manifest = Manifest(sources=names, records=sum(s.records for s in shards), rejected=rejected,
                        shard_size=limit, shards=shards, input_format=",".join(sorted(set(formats))),
                        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    write_manifest(tmp, manifest)
    return manifest
