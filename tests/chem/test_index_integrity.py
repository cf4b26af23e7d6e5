"""Index files are checked before use: a damaged, truncated or swapped file never gives wrong rows
(its shard is searched by text, with a note), `workbench index` rebuilds it, and re-ingesting
keeps the index files of unchanged shards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.chem.conftest import read_records, similarity_truth, substructure_truth

BIN = Path(sys.executable).parent
TEXT_FALLBACK = "searched its SMILES text instead (`workbench index` rebuilds it)"


def rows(table) -> list[tuple[int, str]]:
    return sorted(zip(table["cid"].to_pylist(), table["smiles"].to_pylist()))


def flip(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def indexed(tmp_path, nci_indexed):
    import workbench as wb

    shutil.copytree(nci_indexed.directory, tmp_path / "ds")
    return wb.open_dataset(tmp_path / "ds")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, nci_smi):
    """Ten NCI molecules in one shard, indexed: an index file small enough to damage at every byte."""
    import workbench as wb

    tmp = tmp_path_factory.mktemp("tiny")
    lines = nci_smi.read_text().splitlines()[:10]
    (tmp / "in.tsv").write_text("".join(f"{i + 1}\t{line.split()[0]}\n" for i, line in enumerate(lines)))
    ds = wb.ingest([tmp / "in.tsv"], tmp / "ds", format="cid-smiles")
    ds.build_index(workers=1)
    return ds


def test_manifest_records_each_index_files_sha256_and_size(nci_indexed):
    import hashlib

    entries = json.loads((nci_indexed.directory / "manifest.json").read_text())["index"]["shards"]
    for shard in nci_indexed.manifest.shards:
        data = (nci_indexed.directory / shard.index_path).read_bytes()
        assert entries[shard.name]["file_sha256"] == hashlib.sha256(data).hexdigest() == shard.index_sha256
        assert entries[shard.name]["file_bytes"] == len(data) == shard.index_bytes
    assert all("index_sha256" not in s for s in json.loads((nci_indexed.directory / "manifest.json").read_text())["shards"])


def test_every_flipped_byte_of_an_index_file_is_caught(tiny):
    """Flip each byte of the index file in turn: the worker refuses the file every time and the
    answer (substructure and similarity, as the job computes it on the worker) is RDKit's."""
    from workbench.chem.shards import forget_verdicts
    from workbench.jobs.base import ShardTask
    from workbench.jobs.similarity import SimilarityJob
    from workbench.jobs.substructure import SubstructureJob

    [shard] = tiny.manifest.shards
    task = ShardTask(str(tiny.directory), shard)
    path = tiny.directory / shard.index_path
    pristine = path.read_bytes()
    records = read_records(tiny.directory)
    sub, sim = SubstructureJob("[#6]~[#8]"), SimilarityJob("CC(=O)Nc1ccc(O)cc1", threshold=0.1)
    want_sub = "".join(f"{c}\t{s}\n" for c, s in substructure_truth(records, "[#6]~[#8]")).encode()
    want_sim = sorted(similarity_truth(records, "CC(=O)Nc1ccc(O)cc1", 0.1))
    forget_verdicts()
    assert sub.run(task).payload == want_sub and not sub.run(task).notes  # intact: the index is used
    fd = os.open(path, os.O_WRONLY)
    try:
        for position in range(len(pristine)):
            os.pwrite(fd, bytes([pristine[position] ^ 0xFF]), position)
            forget_verdicts()  # the file changes faster than its mtime: look again
            out = sub.run(task)
            assert out.payload == want_sub, position
            assert out.notes == [f"shard {shard.name}: its index file {shard.index_path} is damaged or was replaced "
                                 f"(its sha256 differs from the one recorded when it was built): {TEXT_FALLBACK}"]
            if position % 16 == 0:
                got = sim.run(task)
                assert sorted((int(c), s, float(x)) for c, s, x in
                              (line.split("\t") for line in got.payload.decode().splitlines())) == want_sim
                assert got.notes
            os.pwrite(fd, pristine[position:position + 1], position)
    finally:
        os.close(fd)
        path.write_bytes(pristine)
        forget_verdicts()


def _search(ds: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "workbench"), "substructure", *args, "-d", str(ds)], capture_output=True, text=True)


def _lines(truth: list[tuple[int, str]]) -> list[str]:
    return sorted(f"{c}\t{s}" for c, s in truth)


@pytest.mark.parametrize("damage", ["fingerprints", "footer", "truncated", "swapped", "deleted"])
def test_damaged_index_file_is_searched_by_text_with_one_note(indexed, nci_records, damage):
    """Through the CLI and worker processes: exit 0, RDKit's rows, one `note:` line naming the shard."""
    import pyarrow as pa

    a, b = indexed.manifest.shards[2], indexed.manifest.shards[3]
    path = indexed.directory / a.index_path
    size = path.stat().st_size
    if damage == "fingerprints":  # inside a mapped pattern column: rows would go missing
        whole = pa.py_buffer(path.read_bytes())
        column = pa.ipc.open_file(whole).get_batch(0).column("p05").buffers()[1]
        flip(path, column.address - whole.address + column.size // 2)
    elif damage == "footer":
        flip(path, size - 40)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: size // 2])
    elif damage == "swapped":
        shutil.copyfile(indexed.directory / b.index_path, path)
    else:
        path.unlink()
    proc = _search(indexed.directory, "c1ccncc1")
    assert (proc.returncode, sorted(proc.stdout.splitlines())) == (0, _lines(substructure_truth(nci_records, "c1ccncc1")))
    reason = {"truncated": f"is damaged or was replaced ({size // 2:,} bytes, {size:,} when it was built)",
              "deleted": "cannot be read (No such file or directory)"}.get(
        damage, "is damaged or was replaced (its sha256 differs from the one recorded when it was built)")
    if damage == "swapped" and (indexed.directory / b.index_path).stat().st_size != size:
        reason = f"is damaged or was replaced ({(indexed.directory / b.index_path).stat().st_size:,} bytes, {size:,} when it was built)"
    assert proc.stderr == f"note: shard {a.name}: its index file {a.index_path} {reason}: {TEXT_FALLBACK}\n"
    # similarity too, through the API: the note is a warning and is kept on the run
    from workbench.errors import WorkbenchNote
    from workbench.jobs.similarity import SimilarityJob

    run = indexed.run(SimilarityJob("CC(=O)Nc1ccc(O)cc1", threshold=0.3))
    with pytest.warns(WorkbenchNote, match=a.name):
        table = run.table()
    assert [tuple(r.values()) for r in table.to_pylist()] == similarity_truth(nci_records, "CC(=O)Nc1ccc(O)cc1", 0.3)
    assert len(run.notes) == 1 and run.notes[0].startswith(f"shard {a.name}: its index file")
    # `workbench index` rebuilds exactly that shard; then no note
    proc = subprocess.run([str(BIN / "workbench"), "index", "-d", str(indexed.directory)], capture_output=True, text=True)
    assert proc.returncode == 0 and f"(1 built, {len(indexed.manifest.shards) - 1} up to date)" in proc.stderr
    proc = _search(indexed.directory, "c1ccncc1")
    assert (proc.returncode, sorted(proc.stdout.splitlines()), proc.stderr) == \
        (0, _lines(substructure_truth(nci_records, "c1ccncc1")), "")


def test_index_recorded_without_file_checksums_is_not_trusted(indexed, nci_records):
    """An index entry without the file's sha256 (an older manifest) counts as not indexed: the
    shards are parsed from text, the note says so, and `workbench index` rebuilds them."""
    from workbench.errors import WorkbenchNote

    manifest = json.loads((indexed.directory / "manifest.json").read_text())
    for entry in manifest["index"]["shards"].values():
        del entry["file_sha256"], entry["file_bytes"]
    (indexed.directory / "manifest.json").write_text(json.dumps(manifest))
    indexed.reload()
    n = len(indexed.manifest.shards)
    with pytest.warns(WorkbenchNote, match=f"^{n} of {n} shards are not indexed"):
        assert rows(indexed.substructure("c1ccncc1")) == substructure_truth(nci_records, "c1ccncc1")
    assert indexed.build_index().built == n


def test_reingest_keeps_index_files_of_unchanged_shards(tmp_path, nci_smi, nci_records):
    """`ingest --force` with 300 records appended: only the shards whose bytes changed are re-indexed."""
    import workbench as wb

    lines = [f"{i + 1}\t{line.split()[0]}\n" for i, line in enumerate(nci_smi.read_text().splitlines())]
    (tmp_path / "a.tsv").write_text("".join(lines[:4000]))
    (tmp_path / "b.tsv").write_text("".join(lines[:4300]))
    ds = wb.ingest([tmp_path / "a.tsv"], tmp_path / "ds", shard_size="32kB")
    ds.build_index(workers=2)
    before = {s.sha256: (tmp_path / "ds" / s.index_path).read_bytes() for s in ds.manifest.shards}

    proc = subprocess.run([str(BIN / "workbench"), "ingest", str(tmp_path / "b.tsv"), "-d", str(tmp_path / "ds"),
                           "--shard-size", "32kB", "--force"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    ds = wb.open_dataset(tmp_path / "ds")
    unchanged = [s for s in ds.manifest.shards if s.sha256 in before]
    changed = len(ds.manifest.shards) - len(unchanged)
    assert len(unchanged) >= 4 and changed >= 1
    assert f"chemistry index kept for unchanged shards: partial ({len(unchanged)}/{len(ds.manifest.shards)} shards)" \
        in proc.stderr
    for s in unchanged:
        assert (tmp_path / "ds" / s.index_path).read_bytes() == before[s.sha256]
    report = ds.build_index(workers=2)
    assert (report.built, report.up_to_date) == (changed, len(unchanged))
    records = read_records(tmp_path / "ds")
    assert len(records) == 4300
    for query in ("c1ccncc1", "[#7]", "*"):
        assert rows(ds.substructure(query)) == substructure_truth(records, query)

    # the same data again: every index file kept, nothing to build
    ds = wb.ingest([tmp_path / "b.tsv"], tmp_path / "ds", shard_size="32kB", force=True)
    assert ds.info()["index"] == "complete"
    assert ds.build_index().built == 0
    assert rows(ds.substructure("c1ccncc1")) == substructure_truth(records, "c1ccncc1")


def test_reingest_does_not_keep_a_damaged_index_file(tmp_path, nci_indexed):
    import workbench as wb

    shutil.copytree(nci_indexed.directory, tmp_path / "ds")
    first = nci_indexed.manifest.shards[0]
    flip(tmp_path / "ds" / first.index_path, 100)
    sources = [tmp_path / "all.tsv"]
    sources[0].write_bytes(b"".join((nci_indexed.directory / s.path).read_bytes() for s in nci_indexed.manifest.shards))
    ds = wb.ingest(sources, tmp_path / "ds", shard_size="32kB", force=True, format="cid-smiles")
    assert [s.sha256 for s in ds.manifest.shards] == [s.sha256 for s in nci_indexed.manifest.shards]
    assert not ds.manifest.shards[0].index_sha256 and not (tmp_path / "ds" / first.index_path).exists()
    assert all(s.index_sha256 for s in ds.manifest.shards[1:])
    assert ds.build_index().built == 1
    assert os.path.exists(tmp_path / "ds" / first.index_path)


def test_a_file_is_hashed_once_per_version_and_any_rewrite_is_seen(tmp_path, monkeypatch):
    """``has_digest`` remembers a settled file's digest (the next process only ``stat``s it), but a
    rewrite with its old times put back is still a new version (ctime), and a file changed within
    the last seconds is never remembered (a second write in the same clock tick would keep its times)."""
    import hashlib

    from workbench.storage import integrity

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 1000)
    digest = hashlib.sha256(b"x" * 1000).hexdigest()
    assert integrity.has_digest(path, digest) and not (tmp_path / "cache" / "hashed").exists()  # too fresh
    old = path.stat().st_mtime_ns - 10**10
    os.utime(path, ns=(old, old))
    monkeypatch.setattr(integrity, "RACY_SECONDS", 0)
    assert integrity.has_digest(path, digest) and len(list((tmp_path / "cache" / "hashed").iterdir())) == 1
    assert not integrity.has_digest(path, "0" * 64)
    time.sleep(0.05)  # past the file system's clock tick (a few ms), as any later rewrite is
    with open(path, "r+b") as fh:  # same size, same mtime put back: ctime still moves
        fh.write(b"y")
    os.utime(path, ns=(old, old))
    assert not integrity.has_digest(path, digest)
