"""Per-shard plumbing shared by the chemistry jobs: index-or-text choice, result lines."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from workbench.chem.loaded import CACHE, FileKey, LoadedShard, file_key

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from workbench.storage.manifest import Manifest, ShardInfo


def indexed_shard(index_path: str, shard: "ShardInfo") -> tuple[LoadedShard | None, str | None]:
    """The shard's index, loaded (or cached) in this process, when the manifest vouches for this
    exact file (size and sha256 as recorded when it was built from these shard bytes).

    Else ``(None, note)``: the note says why a file the manifest records is not used (damaged,
    truncated, swapped, unreadable), so the caller searches the shard's text and says so; it is
    None when the shard simply has no index (the client already said that).
    """
    from workbench.storage.index import index_file_problem

    key = file_key(index_path)
    verdict_key = (key, shard.sha256, shard.index_sha256, shard.index_bytes)
    if verdict_key in _VERDICTS:
        problem = _VERDICTS[verdict_key]
    else:
        problem = index_file_problem(index_path, shard)
        if key is not None:  # a missing file is looked at again next time
            if len(_VERDICTS) > 10_000:
                _VERDICTS.clear()
            _VERDICTS[verdict_key] = problem
    if problem is None and key is not None:
        return CACHE.get(key), None
    if problem:
        return None, f"{problem}: searched its SMILES text instead (`workbench index` rebuilds it)"
    return None, None


#: ``index_file_problem`` verdicts per index file version and what the manifest records for it.
_VERDICTS: dict[tuple[FileKey | None, str, str | None, int | None], str | None] = {}


def forget_verdicts() -> None:
    """Drop the cached file checks and loaded shards (for callers that rewrite files in place)."""
    _VERDICTS.clear()
    CACHE.clear()


def tsv_lines(*columns: Iterable[object]) -> bytes:
    """Result payload: one ``\\t``-joined line per row."""
    return "".join("\t".join(map(str, row)) + "\n" for row in zip(*columns)).encode("utf-8", "surrogateescape")


def tsv_payload(cids: "np.ndarray", smiles: "pa.Array") -> bytes:
    """``CID<TAB>SMILES`` lines built in Arrow, for many hits: no Python object per hit."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from workbench.util.arrow import arrow_array, constant_strings

    n = len(cids)
    if not n:
        return b""
    ended = pc.binary_join_element_wise(smiles, constant_strings("", n), constant_strings("\n", n))
    lines = pc.binary_join_element_wise(pc.cast(arrow_array(np.asarray(cids, dtype=np.int64)), pa.string()), ended,
                                        constant_strings("\t", n))
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset:lines.offset + len(lines) + 1]
    return memoryview(lines.buffers()[2])[offsets[0]:offsets[-1]].tobytes()


def index_coverage_notes(manifest: "Manifest") -> list[str]:
    """Refuse an incompatible index; a note when shards will be parsed from text."""
    from workbench.storage.index import coverage_note

    note = coverage_note(manifest)
    return [note] if note else []
