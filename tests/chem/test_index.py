"""The index: contents checked against RDKit, unparsable records listed, incremental, refused when incompatible."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tests.chem.conftest import indexed_copy, read_records, substructure_truth
from workbench.errors import ChemIndexError, WorkbenchNote


@pytest.fixture
def indexed(tmp_path, nci_indexed):
    """A private copy of the indexed NCI dataset, index included, that the test may modify."""
    import workbench as wb

    shutil.copytree(nci_indexed.directory, tmp_path / "ds")
    return wb.open_dataset(tmp_path / "ds")


def test_index_rows_match_rdkit(nci_indexed, nci_records):
    import pyarrow as pa
    from rdkit import Chem, DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    from workbench.chem.screening import molecule_screen_fp
    from workbench.storage.index import index_rows

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    table = pa.concat_tables(index_rows(str(nci_indexed.directory / s.index_path)) for s in nci_indexed.manifest.shards)
    assert sorted(table["cid"].to_pylist()) == sorted(r.cid for r in nci_records)
    by_cid = {r.cid: r for r in nci_records}
    for row in table.slice(0, 400).to_pylist():
        record = by_cid[row["cid"]]
        assert row["smiles"] == record.smiles
        if record.mol is None:
            assert row["mol"] is None and row["screen"] == row["morgan"] == bytes(256)
            continue
        assert Chem.MolToSmiles(Chem.Mol(row["mol"])) == Chem.MolToSmiles(record.mol)
        assert row["screen"] == molecule_screen_fp(record.mol)
        bits = {i for i in range(2048) if row["morgan"][i // 8] >> (i % 8) & 1}
        assert bits == set(gen.GetFingerprint(record.mol).GetOnBits())
    assert DataStructs  # the fingerprints above are RDKit's own ExplicitBitVects


def test_manifest_records_parameters_and_shards(nci_indexed):
    import rdkit

    index = json.loads((nci_indexed.directory / "manifest.json").read_text())["index"]
    assert index["format"] == "workbench-chem-index" and index["version"] == 2
    assert index["rdkit"] == rdkit.__version__
    assert index["fingerprints"]["morgan"] == {"kind": "morgan", "radius": 2, "fpSize": 2048}
    assert index["fingerprints"]["screen"]["fpSize"] == 2048
    assert {name: e["sha256"] for name, e in index["shards"].items()} == \
        {s.name: s.sha256 for s in nci_indexed.manifest.shards}
    assert nci_indexed.info()["index"] == "complete"


def test_unparsable_records_are_counted_per_shard_and_listed(unparsable_dataset, tmp_path):
    records = read_records(unparsable_dataset.directory)
    bad = sorted((r.cid, r.smiles) for r in records if r.mol is None)
    assert len(bad) >= 6
    ds = indexed_copy(unparsable_dataset.directory, tmp_path / "ds")
    report = ds.build_index(force=True)
    assert sorted(zip(report.invalid["cid"].to_pylist(), report.invalid["smiles"].to_pylist())) == bad
    listed = [tuple(line.split("\t")) for line in (ds.directory / "index" / "invalid.tsv").read_text().splitlines()]
    assert sorted((int(c), s) for c, s in listed) == bad
    per_shard = {name: e["invalid"] for name, e in ds.manifest.index["shards"].items()}
    assert sum(per_shard.values()) == len(bad) and sum(v > 0 for v in per_shard.values()) >= 2
    assert report.records == len(records) and report.built == len(ds.manifest.shards)


def test_second_build_reuses_every_shard(indexed):
    mtimes = {p: p.stat().st_mtime_ns for p in (indexed.directory / "index").glob("*.arrow")}
    report = indexed.build_index()
    assert (report.built, report.up_to_date) == (0, len(indexed.manifest.shards))
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_incremental_rebuild_of_changed_and_missing_shards(indexed):
    from workbench.storage.manifest import write_manifest

    changed, missing = indexed.manifest.shards[0], indexed.manifest.shards[1]
    path = indexed.directory / changed.path
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))  # drop the last record of the first shard
    data = path.read_bytes()
    manifest = indexed.manifest
    manifest.shards[0] = replace(changed, records=len(lines) - 1, bytes=len(data),
                                 sha256=hashlib.sha256(data).hexdigest())
    write_manifest(indexed.directory, manifest)
    (indexed.directory / missing.index_path).unlink()
    indexed.reload()
    assert indexed.info()["index"].startswith("partial")
    report = indexed.build_index()
    assert (report.built, report.up_to_date) == (2, len(manifest.shards) - 2)
    records = read_records(indexed.directory)
    got = indexed.substructure("*")
    assert sorted(zip(got["cid"].to_pylist(), got["smiles"].to_pylist())) == substructure_truth(records, "*")


def test_stale_shard_is_searched_from_text(indexed):
    from workbench.storage.manifest import write_manifest

    shard = indexed.manifest.shards[0]
    path = indexed.directory / shard.path
    first = path.read_text().splitlines(keepends=True)[0]
    path.write_text(first)
    data = path.read_bytes()
    indexed.manifest.shards[0] = replace(shard, records=1, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    write_manifest(indexed.directory, indexed.manifest)
    indexed.reload()
    records = read_records(indexed.directory)
    with pytest.warns(WorkbenchNote, match=r"^1 of \d+ shards are not indexed"):
        got = indexed.substructure("*")
    assert sorted(zip(got["cid"].to_pylist(), got["smiles"].to_pylist())) == substructure_truth(records, "*")


def _record_index_param(ds, field, value) -> None:
    from workbench.storage.manifest import write_manifest

    ds.manifest.index[field] = value
    write_manifest(ds.directory, ds.manifest)
    ds.reload()


@pytest.mark.parametrize("field, value", [("rdkit", "2019.03.1"), ("version", 0),
                                          ("fingerprints", {"morgan": {"radius": 3}})])
def test_incompatible_index_is_refused(indexed, field, value):
    _record_index_param(indexed, field, value)
    assert indexed.info()["index"].startswith("unusable (") and indexed.info()["index"].endswith("re-run `workbench index`")
    for search in (lambda: indexed.substructure("c1ccccc1"), lambda: indexed.similar("c1ccccc1")):
        with pytest.raises(ChemIndexError, match=r"re-run `workbench index`"):
            search()


def test_rebuild_makes_an_incompatible_index_usable(indexed, nci_records):
    _record_index_param(indexed, "rdkit", "2019.03.1")
    report = indexed.build_index()
    assert report.built == len(indexed.manifest.shards)
    got = indexed.substructure("c1ccncc1")
    assert sorted(zip(got["cid"].to_pylist(), got["smiles"].to_pylist())) == substructure_truth(nci_records, "c1ccncc1")


def test_index_file_from_other_bytes_is_not_trusted(indexed, tmp_path):
    """An index file copied from another shard is ignored: the shard is parsed from text instead."""
    a, b = indexed.manifest.shards[:2]
    shutil.copy(indexed.directory / b.index_path, indexed.directory / a.index_path)
    records = read_records(indexed.directory)
    got = indexed.substructure("c1ccncc1")
    assert sorted(zip(got["cid"].to_pylist(), got["smiles"].to_pylist())) == substructure_truth(records, "c1ccncc1")
    assert Path(indexed.directory / a.index_path).exists()


def test_jobs_round_trip_through_spec():
    """Container workers rebuild jobs from ``spec()`` JSON."""
    from workbench.jobs import job_from_spec
    from workbench.jobs.indexing import IndexJob
    from workbench.jobs.similarity import SimilarityJob
    from workbench.jobs.substructure import SubstructureJob

    for job in (IndexJob(), SubstructureJob("c1ccccc1", smiles=True, limit=3, count_only=True),
                SimilarityJob("CCO", threshold=0.5, top=10)):
        assert job_from_spec(json.loads(json.dumps(job.spec()))) == job


def test_rebuild_replaces_a_format_1_index(nci_indexed, tmp_path):
    """An index from the Parquet format (v1) is refused, rebuilt as Arrow files, and its files removed."""
    ds = indexed_copy(nci_indexed.directory, tmp_path / "ds")
    old = [ds.directory / "index" / f"{s.name}.parquet" for s in ds.manifest.shards]
    for path in old:
        path.write_bytes(b"PAR1 an old index file")
    _record_index_param(ds, "version", 1)
    with pytest.raises(ChemIndexError, match="this workbench reads v2"):
        ds.substructure("c1ccccc1")
    report = ds.build_index()
    assert report.built == len(ds.manifest.shards) and not any(p.exists() for p in old)
    assert all((ds.directory / s.index_path).exists() for s in ds.manifest.shards)


def test_rebuild_deletes_what_a_killed_build_left_but_not_a_live_build_s_file(indexed):
    """A SIGKILLed build leaves ``index/<shard>.arrow.tmp-PID``; the next build of that shard deletes
    it once it is stale, and leaves a partial file another build is still writing."""
    import os

    from workbench.storage.index import PARTIAL_STALE_SECONDS

    shard = indexed.manifest.shards[0]
    final = indexed.directory / shard.index_path
    killed, live = Path(f"{final}.tmp-4242"), Path(f"{final}.tmp-4343")
    killed.write_bytes(b"half an index")
    live.write_bytes(b"an index being written")
    long_ago = final.stat().st_mtime - PARTIAL_STALE_SECONDS - 60
    os.utime(killed, (long_ago, long_ago))
    final.unlink()
    assert indexed.build_index().built == 1
    assert not killed.exists() and live.read_bytes() == b"an index being written"
    assert sorted(p.name for p in final.parent.iterdir() if shard.name in p.name) == [final.name, live.name]
