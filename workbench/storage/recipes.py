"""Dataset recipes: ``workbench datasets fetch NAME --dataset DIR``.

- ``nci-5k``: RDKit's bundled ``first_5K.smi`` (4,999 NCI molecules; ships with the rdkit wheel).
- ``moses``: 1.9 M ZINC-derived SMILES from the ``molsets`` wheel on PyPI (fetched with pip);
  MOSES has no identifiers, so records get CIDs 1..N in file order.
- ``pubchem``: PubChem's real ``CID-SMILES.gz`` (116 M compounds), streamed from its FTP site.
"""

from __future__ import annotations

import gzip
import io
import os
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import IngestError, WorkbenchError
from workbench.util.downloads import cache_dir, pip

PUBCHEM_URL = "https://ftp.ncbi.nlm.nih.gov/pubchem/Compound/Extras/CID-SMILES.gz"
MOLSETS = "molsets==0.3.1"


@dataclass(frozen=True)
class Recipe:
    name: str
    size: str
    description: str
    build: Callable[[Path, str, bool], Path]


def nci_smi() -> Path:
    from rdkit import RDConfig

    return Path(RDConfig.RDDataDir) / "NCI" / "first_5K.smi"


def _nci(target: Path, shard_size: str, force: bool) -> Path:
    from workbench.storage.ingest import ingest

    return ingest([nci_smi()], target, shard_size=shard_size, format="smi", force=force)


def molsets_wheel() -> Path:
    """The ``molsets`` wheel, downloaded once into the cache with pip."""
    cache = cache_dir() / "wheels"
    found = sorted(cache.glob("molsets-*.whl"))
    if found:
        return found[-1]
    cache.mkdir(parents=True, exist_ok=True)
    try:
        pip("download", "--no-deps", "-d", str(cache), MOLSETS)
    except WorkbenchError as exc:
        raise IngestError(f"cannot download {MOLSETS}: {exc}") from None
    found = sorted(cache.glob("molsets-*.whl"))
    if not found:
        raise IngestError(f"pip download of {MOLSETS} left no wheel in {cache}")
    return found[-1]


def moses_cid_smiles(limit: int | None = None) -> Iterator[bytes]:
    """MOSES SMILES (train, then test, then scaffold test) as ``CID<TAB>SMILES`` lines, CIDs from 1."""
    cid = 0
    with zipfile.ZipFile(molsets_wheel()) as wheel:
        members = sorted(n for n in wheel.namelist() if n.startswith("moses/dataset/data/") and n.endswith(".csv.gz"))
        order = {"train": 0, "test": 1}
        members.sort(key=lambda n: order.get(Path(n).name.split(".")[0], 2))
        for member in members:
            with gzip.open(wheel.open(member)) as fh:
                header = fh.readline()
                if not header.upper().startswith(b"SMILES"):
                    raise IngestError(f"unexpected MOSES file layout in {member}")
                for line in fh:
                    smiles = line.split(b",", 1)[0].strip()
                    if not smiles:
                        continue
                    cid += 1
                    yield b"%d\t%s\n" % (cid, smiles)
                    if limit and cid >= limit:
                        return


class _ByteStream(io.RawIOBase):
    """A readable binary stream over an iterator of byte strings; ``name`` is what ingest reports."""

    def __init__(self, parts: Iterator[bytes], name: str):
        self._parts, self._buf, self.name = parts, b"", name

    def readable(self) -> bool:
        return True

    def readinto(self, b: "memoryview") -> int:  # type: ignore[override]
        while not self._buf:
            try:
                self._buf = next(self._parts)
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n], self._buf = self._buf[:n], self._buf[n:]
        return n


def _moses(target: Path, shard_size: str, force: bool) -> Path:
    from workbench.storage.ingest import ingest

    stream = io.BufferedReader(_ByteStream(moses_cid_smiles(), MOLSETS), buffer_size=1 << 20)
    return ingest([stream], target, shard_size=shard_size, format="cid-smiles", force=force)


def _pubchem(target: Path, shard_size: str, force: bool) -> Path:
    from workbench.storage.ingest import ingest

    url = os.environ.get("WORKBENCH_PUBCHEM_URL", PUBCHEM_URL)
    try:
        response = urllib.request.urlopen(url, timeout=30)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise IngestError(f"cannot download {url}: {reason} (this machine needs internet access for the "
                          "pubchem recipe; or download CID-SMILES.gz elsewhere and run `workbench ingest`)") from None
    with response:
        stream = io.BufferedReader(_ByteStream(iter(lambda: response.read(1 << 20), b""), url), buffer_size=1 << 20)
        return ingest([stream], target, shard_size=shard_size, format="cid-smiles", force=force)


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("nci-5k", "4,999", "RDKit's bundled NCI sample (first_5K.smi)", _nci),
        Recipe("moses", "1.9 M", f"MOSES benchmark SMILES from the {MOLSETS} wheel (PyPI)", _moses),
        Recipe("pubchem", "116 M", f"PubChem CID-SMILES.gz ({PUBCHEM_URL})", _pubchem),
    )
}


def fetch(name: str, target: str | os.PathLike[str], shard_size: str = "64MB", force: bool = False) -> Path:
    """Build the dataset of recipe ``name`` into ``target``."""
    try:
        recipe = RECIPES[name]
    except KeyError:
        raise WorkbenchError(f"unknown dataset recipe {name!r} (known: {', '.join(RECIPES)})") from None
    target = Path(target)
    if target.exists() and not force:
        raise IngestError(f"{str(target)!r} already exists (use --force to replace it)")
    return recipe.build(target, shard_size, force)
