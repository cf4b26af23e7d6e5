"""Edge cases, against RDKit called directly: `-c` with `--limit`, `--limit` on a dataset not in CID
order, CIDs up to int64's maximum, queries holding a NUL byte, notes returned rather than printed."""

from __future__ import annotations

import random
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.chem.conftest import indexed_copy, read_records, similarity_truth, substructure_truth
from workbench.cli import main
from workbench.errors import QueryError, WorkbenchNote

BIN = Path(sys.executable).parent
INT64_MAX = 9223372036854775807
TAB = b"\t"


def rows(table) -> list[tuple[int, str]]:
    return sorted(zip(table["cid"].to_pylist(), table["smiles"].to_pylist()))


def cli(capfdbinary, *args: str) -> tuple[int, bytes, str]:
    code = main(list(args))
    out, err = capfdbinary.readouterr()
    return code, out, err.decode()


# -- `-c` counts what is printed; `--limit` keeps the lowest CIDs --------------------------------
@pytest.mark.parametrize("limit", [1, 3, 10**6])
def test_count_with_limit_counts_what_is_printed(nci_indexed, nci_records, capfdbinary, limit):
    ds = str(nci_indexed.directory)
    truth = substructure_truth(nci_records, "C")
    code, out, err = cli(capfdbinary, "substructure", "C", "--limit", str(limit), "-c", "-d", ds)
    assert (code, out, err) == (0, f"{min(limit, len(truth))}\n".encode(), "")
    code, out, _ = cli(capfdbinary, "substructure", "C", "--limit", str(limit), "-d", ds)
    assert code == 0 and out.splitlines() == [f"{c}\t{s}".encode() for c, s in truth[:limit]]


@pytest.fixture(scope="module")
def shuffled(tmp_path_factory, nci_smi):
    """NCI molecules under shuffled CIDs (not in CID order), a few CIDs repeated, not indexed."""
    import workbench as wb

    tmp = tmp_path_factory.mktemp("shuffled")
    smiles = [line.split()[0] for line in nci_smi.read_text().splitlines()[:1500]]
    cids = list(range(1, len(smiles) + 1))
    random.Random(7).shuffle(cids)
    cids[10:20] = cids[500:510]  # duplicate CIDs in other shards
    (tmp / "in.tsv").write_text("".join(f"{c}\t{s}\n" for c, s in zip(cids, smiles)))
    return wb.ingest([tmp / "in.tsv"], tmp / "ds", shard_size="16kB", format="cid-smiles")


def _lowest(records, query: str, limit: int) -> list[tuple[int, str]]:
    """RDKit's matches in dataset order, the ``limit`` lowest CIDs (ties: dataset order)."""
    from rdkit import Chem

    q = Chem.MolFromSmarts(query)
    hits = [(r.cid, r.smiles) for r in records if r.mol is not None and r.mol.HasSubstructMatch(q)]
    return sorted(hits, key=lambda h: h[0])[:limit]


@pytest.mark.parametrize("query", ["c1ccccc1", "[#7]", "C(=O)O", "*"])
def test_limit_keeps_the_lowest_cids_in_any_order(shuffled, tmp_path, query):
    records = read_records(shuffled.directory)
    assert [r.cid for r in records] != sorted(r.cid for r in records)
    indexed = indexed_copy(shuffled.directory, tmp_path / "ds")
    for limit in (1, 7, 40):
        want = _lowest(records, query, limit)
        for ds in (shuffled, indexed):  # text and index
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", WorkbenchNote)
                got = ds.substructure(query, limit=limit)
            assert list(zip(got["cid"].to_pylist(), got["smiles"].to_pylist())) == want, (query, limit)


# -- CIDs up to int64's maximum ----------------------------------------------------------------
def test_cids_up_to_int64_max_are_records(tmp_path, capfdbinary):
    import pyarrow.parquet as pq

    import workbench as wb

    good = [(INT64_MAX, "c1ccccc1O"), (INT64_MAX - 1, "CCO"), (10**18, "c1ccncc1"), (999999999999999999, "CC(=O)O"),
            (1, "C")]
    bad = [b"9223372036854775808\tCC", b"10000000000000000000\tCC", b"99999999999999999999999\tCC"]
    src = tmp_path / "in.tsv"
    src.write_bytes(b"".join(f"{c}\t{s}\n".encode() for c, s in good[:2]) + b"\n".join(bad) + b"\n"
                    + b"".join(f"{c}\t{s}\n".encode() for c, s in good[2:]))
    ds = wb.ingest([src], tmp_path / "ds", format="cid-smiles")
    assert (ds.manifest.records, ds.manifest.rejected) == (len(good), len(bad))
    reasons = [line.split("\t")[2] for line in (ds.directory / "rejects.tsv").read_text().splitlines()[1:]]
    assert reasons == [f"CID {b.partition(TAB)[0].decode()!r} is out of range (at most {INT64_MAX})" for b in bad]
    assert ds.manifest.shards[0].first_cid == INT64_MAX
    records = read_records(ds.directory)
    assert [(r.cid, r.smiles) for r in records] == good
    # .smi and the fast all-valid path (a block of clean lines)
    (tmp_path / "in.smi").write_text("".join(f"{s} {c}\n" for c, s in good))
    assert [(r.cid, r.smiles) for r in read_records(wb.ingest([tmp_path / "in.smi"], tmp_path / "smi").directory)] == good
    assert wb.ingest([tmp_path / "in.smi"], tmp_path / "smi2").manifest.rejected == 0

    code, out, _ = cli(capfdbinary, "grep", "-F", "c1ccccc1O", "-d", str(ds.directory))
    assert (code, out) == (0, f"{INT64_MAX}\tc1ccccc1O\n".encode())
    for d in (ds, indexed_copy(ds.directory, tmp_path / "ix")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", WorkbenchNote)
            assert rows(d.substructure("[#8]")) == substructure_truth(records, "[#8]")
            assert rows(d.substructure("[#8]", limit=1)) == [(999999999999999999, "CC(=O)O")]
            got = d.similar("c1ccccc1O", threshold=0.0)
        assert list(zip(*(got[c].to_pylist() for c in got.column_names))) == similarity_truth(records, "c1ccccc1O", 0.0)
    code, out, _ = cli(capfdbinary, "substructure", "c1ccccc1", "-d", str(tmp_path / "ix"), "-o", str(tmp_path / "h.parquet"))
    assert code == 0 and out == f"{INT64_MAX}\tc1ccccc1O\n".encode()
    assert pq.read_table(tmp_path / "h.parquet")["cid"].to_pylist() == [INT64_MAX]


def test_sdf_title_cid_up_to_int64_max(tmp_path):
    from rdkit import Chem

    import workbench as wb

    sdf = tmp_path / "in.sdf"
    writer = Chem.SDWriter(str(sdf))
    for cid in (INT64_MAX, INT64_MAX + 1):
        mol = Chem.MolFromSmiles("CCO")
        mol.SetProp("_Name", str(cid))
        writer.write(mol)
    writer.close()
    ds = wb.ingest([sdf], tmp_path / "ds")
    assert [(r.cid, r.smiles) for r in read_records(ds.directory)] == [(INT64_MAX, "CCO")]
    assert ds.manifest.rejected == 1


# -- a NUL byte in a query is refused ----------------------------------------------------------
@pytest.mark.parametrize("search", [
    lambda ds: ds.substructure("c1ccccc1\0"),
    lambda ds: ds.substructure("c1ccccc1\0N"),
    lambda ds: ds.substructure("CCO\0", smiles=True),
    lambda ds: ds.similar("CCO\0"),
    lambda ds: ds.grep("CC\0O", fixed=True),
])
def test_nul_byte_in_a_query_is_a_query_error(nci_indexed, search):
    with pytest.raises(QueryError, match=r"contains a NUL byte$"):
        search(nci_indexed)


@pytest.mark.parametrize("args, kind", [
    (["substructure", "c1ccccc1\0"], "SMARTS 'c1ccccc1\\x00'"),
    (["substructure", "CCO\0", "--smiles"], "SMILES 'CCO\\x00'"),
    (["similar", "CCO\0"], "SMILES 'CCO\\x00'"),
    (["grep", "-F", "CC\0O"], "pattern 'CC\\x00O'"),
])
def test_nul_byte_in_a_query_is_one_error_line_exit_2(nci_indexed, capfdbinary, args, kind):
    # an argv cannot hold a NUL byte: the in-process entry point is the only way to pass one
    assert cli(capfdbinary, *args, "-d", str(nci_indexed.directory)) == \
        (2, b"", f"error: invalid {kind}: it contains a NUL byte\n")


def test_rdkit_would_cut_the_query_at_the_nul_byte():
    """Why it is refused: RDKit reads a query ending in NUL and something as the part before it."""
    from rdkit import Chem

    assert Chem.MolToSmiles(Chem.MolFromSmiles("CCO\0")) == "CCO"
    assert Chem.MolToSmarts(Chem.MolFromSmarts("c1ccccc1\0")) == "c1ccccc1"


# -- notes are returned (and warned), never printed by the library ---------------------------
def test_api_notes_are_warnings_and_kept_on_the_run_not_printed(nci_dataset, nci_records, capfd):
    from workbench.jobs.substructure import SubstructureJob

    run = nci_dataset.run(SubstructureJob("c1ccncc1"))
    with pytest.warns(WorkbenchNote) as caught:
        table = run.table()
    assert rows(table) == substructure_truth(nci_records, "c1ccncc1")
    note = "no chemistry index: parsing every SMILES (`workbench index` would make this search faster)"
    assert run.notes == [note] and [str(w.message) for w in caught] == [note]
    assert capfd.readouterr() == ("", "")


def test_cli_prints_each_note_once(nci_dataset):
    proc = subprocess.run([str(BIN / "workbench"), "similar", "CCO", "-t", "0.5", "-d", str(nci_dataset.directory)],
                          capture_output=True, text=True)
    assert proc.returncode in (0, 1)
    assert proc.stderr == "note: no chemistry index: parsing every SMILES (`workbench index` would make this search faster)\n"
