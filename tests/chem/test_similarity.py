"""Similarity search equals ``DataStructs.BulkTanimotoSimilarity`` on Morgan r=2 2048-bit fingerprints."""

from __future__ import annotations

import pytest

from tests.chem.conftest import similarity_truth
from workbench.errors import QueryError, WorkbenchNote

QUERIES = ["OC(=O)c1ccccc1", "CC(=O)Nc1ccc(O)cc1", "c1ccc2ncccc2c1", "CN1CCN(CC1)C"]


def rows(table) -> list[tuple[int, str, float]]:
    return list(zip(table["cid"].to_pylist(), table["smiles"].to_pylist(), table["similarity"].to_pylist()))


@pytest.mark.parametrize("threshold", [0.2, 0.35, 0.5, 0.7, 1.0])
@pytest.mark.parametrize("query", QUERIES)
def test_threshold_equals_bulk_tanimoto(nci_indexed, nci_records, query, threshold):
    assert rows(nci_indexed.similar(query, threshold=threshold)) == similarity_truth(nci_records, query, threshold)


@pytest.mark.parametrize("top", [1, 5, 50])
def test_top_k_are_the_k_best_scores(nci_indexed, nci_records, top):
    truth = similarity_truth(nci_records, "CC(=O)Nc1ccc(O)cc1", 0.0)
    assert rows(nci_indexed.similar("CC(=O)Nc1ccc(O)cc1", threshold=0.0, top=top)) == truth[:top]


def test_threshold_zero_scores_every_parsable_record(unparsable_dataset):
    from tests.chem.conftest import read_records

    records = read_records(unparsable_dataset.directory)
    got = rows(unparsable_dataset.similar("c1ccccc1", threshold=0.0))  # text path
    assert got == similarity_truth(records, "c1ccccc1", 0.0)
    assert len(got) == sum(r.mol is not None for r in records)


def test_on_moses(moses_indexed, moses_records):
    query = "CC(C)(C)C(=O)C(Oc1ccc(Cl)cc1)n1ccnc1"
    assert rows(moses_indexed.similar(query, threshold=0.3)) == similarity_truth(moses_records, query, 0.3)
    assert rows(moses_indexed.similar(query, threshold=0.0, top=20)) == similarity_truth(moses_records, query, 0.0)[:20]


def test_without_index_same_results(nci_dataset, nci_records):
    query = "CC(=O)Nc1ccc(O)cc1"
    with pytest.warns(WorkbenchNote, match="would make this search faster"):
        assert rows(nci_dataset.similar(query, threshold=0.3)) == similarity_truth(nci_records, query, 0.3)


@pytest.mark.parametrize("workers", [1, 2])
def test_same_results_with_one_and_all_workers(nci_indexed, nci_records, workers):
    got = rows(nci_indexed.similar("c1ccc2ncccc2c1", threshold=0.25, workers=workers))
    assert got == similarity_truth(nci_records, "c1ccc2ncccc2c1", 0.25)


def test_batches_are_sorted_per_shard(nci_indexed):
    for batch in nci_indexed.similar_batches("c1ccccc1", threshold=0.1):
        sims = batch.column("similarity").to_pylist()
        assert sims == sorted(sims, reverse=True)


@pytest.mark.parametrize("kwargs, message", [
    ({"smiles": "C1CC"}, "invalid SMILES 'C1CC'"),
    ({"smiles": "CCO", "threshold": 1.5}, "invalid threshold 1.5"),
    ({"smiles": "CCO", "top": 0}, "invalid top 0"),
])
def test_invalid_query_is_a_query_error(nci_indexed, kwargs, message):
    with pytest.raises(QueryError, match=message):
        nci_indexed.similar(**kwargs)
