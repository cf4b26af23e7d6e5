"""Per-shard plumbing shared by the chemistry jobs: index-or-text choice, result lines."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from workbench.chem.loaded import CACHE, FileKey, LoadedShard, file_key

if TYPE_CHECKING:
    from workbench.storage.manifest import Manifest, ShardInfo


def indexed_shard(index_path: str, shard: "ShardInfo") -> LoadedShard | None:
    """The shard's index, loaded (or cached) in this process, if one was built from these bytes."""
    from workbench.storage.index import shard_index_usable

    key = file_key(index_path)
    if key is None:
        return None
    usable = _USABLE.get((key, shard.sha256))
    if usable is None:
        usable = _USABLE[(key, shard.sha256)] = shard_index_usable(index_path, shard)
        if len(_USABLE) > 10_000:
            _USABLE.clear()
    return CACHE.get(key) if usable else None


#: Verdicts of ``shard_index_usable`` per index file version and shard checksum.
_USABLE: dict[tuple[FileKey, str], bool] = {}


def tsv_lines(*columns: Iterable[object]) -> bytes:
    """Result payload: one ``\\t``-joined line per row."""
    return "".join("\t".join(map(str, row)) + "\n" for row in zip(*columns)).encode("utf-8", "surrogateescape")


def note_index_coverage(manifest: "Manifest") -> None:
    """Refuse an incompatible index; tell stderr when shards will be parsed from text."""
    from workbench.storage.index import coverage_note

    note = coverage_note(manifest)
    if note:
        print(f"note: {note}", file=sys.stderr)
