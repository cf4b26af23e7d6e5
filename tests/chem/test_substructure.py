"""Substructure search equals ``Chem.MolFromSmiles(s).HasSubstructMatch(q)`` for every record."""

from __future__ import annotations

import pytest

from tests.chem.conftest import HAND_SMARTS, rdkit_panel, substructure_truth
from workbench.errors import QueryError, WorkbenchNote

PANEL = HAND_SMARTS + rdkit_panel()
SMILES_QUERIES = ["c1ccccc1", "C(=O)O", "CCN", "c1ccc2[nH]ccc2c1", "OC(=O)C1=CC=CC=C1", "[NH4+]"]


def rows(table) -> list[tuple[int, str]]:
    return sorted(zip(table["cid"].to_pylist(), table["smiles"].to_pylist()))


def test_panel_is_large_and_parsable():
    from rdkit import Chem

    assert len(PANEL) >= 60
    assert all(Chem.MolFromSmarts(q) is not None for q in PANEL)


@pytest.mark.parametrize("query", PANEL)
def test_indexed_smarts_panel_on_nci(nci_indexed, nci_records, query):
    assert rows(nci_indexed.substructure(query)) == substructure_truth(nci_records, query)


@pytest.mark.parametrize("query", HAND_SMARTS[:12] + rdkit_panel(40, 60))
def test_indexed_smarts_panel_on_moses(moses_indexed, moses_records, query):
    assert rows(moses_indexed.substructure(query)) == substructure_truth(moses_records, query)


@pytest.mark.parametrize("query", SMILES_QUERIES)
def test_smiles_queries(nci_indexed, nci_records, query):
    assert rows(nci_indexed.substructure(query, smiles=True)) == substructure_truth(nci_records, query, smiles=True)


def test_smiles_query_is_not_smarts(nci_indexed, nci_records):
    # As SMILES, "C1=CC=CC=C1" is benzene (aromatic); as SMARTS it asks for aliphatic C=C.
    smiles = rows(nci_indexed.substructure("C1=CC=CC=C1", smiles=True))
    assert smiles == substructure_truth(nci_records, "c1ccccc1") and smiles
    assert rows(nci_indexed.substructure("C1=CC=CC=C1")) == substructure_truth(nci_records, "C1=CC=CC=C1")


@pytest.mark.parametrize("query", ["c1ccncc1", "[$([NX3;H2,H1;!$(NC=O)])]", "S(=O)(=O)N", "[r5]"])
def test_without_index_parses_text_and_says_so(nci_dataset, nci_records, query):
    with pytest.warns(WorkbenchNote, match="`workbench index` would make this search faster"):
        assert rows(nci_dataset.substructure(query)) == substructure_truth(nci_records, query)


@pytest.mark.parametrize("workers", [1, 2])
def test_same_results_with_one_and_all_workers(nci_indexed, nci_records, workers):
    for query in ["c1ccncc1", "[#7]", "C(=O)N", "[+,-]"]:
        assert rows(nci_indexed.substructure(query, workers=workers)) == substructure_truth(nci_records, query)


def test_repeated_queries_reuse_the_started_backend(nci_indexed):
    from workbench.backends import get_backend

    nci_indexed.substructure("c1ccccc1", workers=2)
    backend = get_backend("local", workers=2)
    client = backend.client()
    nci_indexed.substructure("C(=O)N", workers=2)
    assert get_backend("local", workers=2) is backend and backend.client() is client


def test_no_hidden_cap_on_results(nci_indexed, nci_records):
    # "*" matches every parsable molecule: far more than GetMatches' default of 1000.
    table = nci_indexed.substructure("*")
    assert table.num_rows == sum(r.mol is not None for r in nci_records) > 1000


def test_limit_keeps_the_lowest_cids(nci_indexed, nci_records):
    truth = substructure_truth(nci_records, "c1ccccc1")
    assert rows(nci_indexed.substructure("c1ccccc1", limit=25)) == truth[:25]
    assert rows(nci_indexed.substructure("c1ccccc1", limit=10**9)) == truth


def test_batches_stream_one_per_shard(nci_indexed, nci_records):
    batches = list(nci_indexed.substructure_batches("c1ccncc1"))
    assert len(batches) == len(nci_indexed.manifest.shards)
    got = sorted(c for b in batches for c in b.column("cid").to_pylist())
    assert got == [cid for cid, _ in substructure_truth(nci_records, "c1ccncc1")]


def test_empty_result_is_an_empty_table(nci_indexed):
    table = nci_indexed.substructure("[U]")
    assert table.num_rows == 0 and table.column_names == ["cid", "smiles"]


@pytest.mark.parametrize("query, smiles, message", [
    ("C(", False, "invalid SMARTS 'C('"),
    ("[C", False, "invalid SMARTS"),
    ("", False, "invalid SMARTS ''"),
    ("c1cccc1", True, "invalid SMILES 'c1cccc1'"),
])
def test_invalid_query_is_a_query_error(nci_indexed, query, smiles, message):
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace("[", r"\[")):
        nci_indexed.substructure(query, smiles=smiles)


def test_unparsable_records_never_match_and_never_fail(unparsable_dataset, tmp_path):
    from tests.chem.conftest import indexed_copy, read_records

    records = read_records(unparsable_dataset.directory)
    assert sum(r.mol is None for r in records) >= 6
    parsable = sorted((r.cid, r.smiles) for r in records if r.mol is not None)
    assert rows(unparsable_dataset.substructure("*")) == parsable  # text scan
    indexed = indexed_copy(unparsable_dataset.directory, tmp_path / "ds")
    assert rows(indexed.substructure("*")) == parsable  # index
    assert rows(indexed.substructure("CC(C)C")) == substructure_truth(records, "CC(C)C")


def test_small_cache_budget_keeps_results_exact(nci_indexed, nci_records, monkeypatch):
    """In a worker process: molecules stay decoded only within WORKBENCH_CHEM_CACHE_MB."""
    from workbench.chem.loaded import CACHE, MOL_BYTES
    from workbench.jobs.base import ShardTask
    from workbench.jobs.substructure import SubstructureJob

    monkeypatch.setenv("WORKBENCH_CHEM_CACHE_MB", "1")
    CACHE.clear()
    try:
        for query in ("c1ccccc1", "N[C@@H](C)C(=O)O", "[$([NX3;H2,H1;!$(NC=O)])]", "[r5]"):
            job = SubstructureJob(query)
            truth = [cid for cid, _ in substructure_truth(nci_records, query)]
            for _ in range(2):  # second round: some molecules come from the cache
                payload = b"".join(job.run(ShardTask(str(nci_indexed.directory), s)).payload
                                   for s in nci_indexed.manifest.shards)
                assert sorted(int(line.split(b"\t")[0]) for line in payload.splitlines()) == truth
        decoded = sum(shard.decoded for shard in CACHE.shards())
        assert 0 < decoded * MOL_BYTES <= 1e6 < len(truth) * MOL_BYTES
    finally:
        CACHE.clear()
