"""The dataset manifest: ``DIR/manifest.json`` describing checksummed plain-text shards.

Loading it refuses any path leading out of the dataset (``workbench.storage.integrity``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.errors import DatasetError
from workbench.storage.integrity import check_paths

MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "workbench-dataset"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ShardInfo:
    """One shard: ``CID<TAB>SMILES`` lines, at most ``shard_size`` bytes, cut on line boundaries."""

    name: str
    path: str  # relative to the dataset directory
    records: int
    bytes: int
    sha256: str
    first_cid: int | None = None
    last_cid: int | None = None
    #: Every byte is ASCII (grep engines then agree byte for byte); None: not recorded (older datasets).
    ascii: bool | None = None
    #: sha256 and size of the shard's index file, from the manifest's ``index`` section when that
    #: records an index built from these exact bytes (None: no trusted index file). Workers check
    #: the file against them before using it; not stored in the ``shards`` list.
    index_sha256: str | None = None
    index_bytes: int | None = None

    @property
    def index_path(self) -> str:
        """Where the chemistry index of this shard lives, relative to the dataset directory."""
        return f"index/{self.name}.arrow"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ShardInfo":
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]


@dataclass
class Manifest:
    """What ``workbench ingest`` wrote; extended by ``index`` and ``place``."""

    sources: list[str]
    records: int
    rejected: int
    shard_size: int
    shards: list[ShardInfo]
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION
    created: str = ""
    input_format: str = ""
    index: dict[str, Any] | None = None  # written by `workbench index`
    placement: dict[str, Any] | None = None  # written by `workbench place`
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.attach_index_files()

    def attach_index_files(self) -> None:
        """Give each shard the index file digest that ``index`` records for its exact bytes."""
        built = (self.index or {}).get("shards", {})
        shards = []
        for s in self.shards:
            entry = built.get(s.name) or {}
            ok = entry.get("sha256") == s.sha256 and entry.get("file_sha256")
            shards.append(replace(s, index_sha256=entry["file_sha256"] if ok else None,
                                  index_bytes=entry.get("file_bytes") if ok else None))
        self.shards = shards

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.shards)

    def shard(self, name: str) -> ShardInfo:
        for s in self.shards:
            if s.name == name:
                return s
        raise DatasetError(f"no shard named {name!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for shard in d["shards"]:  # derived from ``index``
            del shard["index_sha256"], shard["index_bytes"]
        d["bytes"] = self.bytes
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Manifest":
        if d.get("format") != FORMAT_NAME:
            raise DatasetError("manifest.json is not a workbench dataset manifest")
        if d.get("version") != FORMAT_VERSION:
            raise DatasetError(
                f"dataset format version {d.get('version')} is not supported (this workbench reads {FORMAT_VERSION})"
            )
        known = set(cls.__dataclass_fields__)
        kw = {k: v for k, v in d.items() if k in known}
        for key in ("index", "placement"):
            if not isinstance(kw.get(key), (dict, type(None))):
                raise DatasetError(f"manifest.json is malformed (`{key}` must be an object)")
        try:
            kw["shards"] = [ShardInfo.from_dict(s) for s in d["shards"]]
            return cls(**kw)
        except (KeyError, TypeError, AttributeError) as exc:
            raise DatasetError(f"manifest.json is malformed ({type(exc).__name__}: {exc})") from None


def read_manifest(directory: str | os.PathLike[str]) -> Manifest:
    """Load ``DIR/manifest.json``; a missing or broken one is a ``DatasetError``."""
    path = Path(directory) / MANIFEST_NAME
    if not Path(directory).is_dir():
        raise DatasetError(f"dataset {str(directory)!r} does not exist")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"{str(directory)!r} is not a dataset (no {MANIFEST_NAME}); create one with `workbench ingest`") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path} is not a workbench dataset manifest")
    manifest = Manifest.from_dict(data)
    check_paths(Path(directory), manifest)  # a manifest names only files inside its dataset
    return manifest


def write_manifest(directory: str | os.PathLike[str], manifest: Manifest) -> None:
    """Write the manifest atomically (temporary file + rename)."""
    path = Path(directory) / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest.to_dict(), indent=1) + "\n")
    os.replace(tmp, path)
