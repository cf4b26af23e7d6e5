"""``similar Q --top K`` alone is the K nearest (threshold 0, as chemfp); CLI and API."""

from __future__ import annotations

from tests.chem.conftest import similarity_truth
from workbench.cli import main

QUERY = "CN1CCN(CC1)C"  # few NCI molecules reach 0.7: --top 10 at 0.7 would print fewer than 10


def rows(table) -> list[tuple[int, str, float]]:
    return list(zip(table["cid"].to_pylist(), table["smiles"].to_pylist(), table["similarity"].to_pylist()))


def test_query_has_fewer_than_ten_neighbours_at_the_default_threshold(nci_records):
    assert len(similarity_truth(nci_records, QUERY, 0.7)) < 10


def test_api_top_alone_is_the_k_nearest(nci_indexed, nci_dataset, nci_records):
    truth = similarity_truth(nci_records, QUERY, 0.0)[:10]
    assert rows(nci_indexed.similar(QUERY, top=10)) == truth
    assert rows(nci_dataset.similar(QUERY, top=10)) == truth  # text path
    assert rows(nci_indexed.similar(QUERY, top=10, threshold=0.7)) == similarity_truth(nci_records, QUERY, 0.7)[:10]
    assert rows(nci_indexed.similar(QUERY)) == similarity_truth(nci_records, QUERY, 0.7)  # no top: 0.7


def test_cli_top_alone_is_the_k_nearest(nci_indexed, nci_records, capfdbinary):
    def lines(*args: str) -> tuple[int, list[bytes]]:
        code = main(["similar", QUERY, "-d", str(nci_indexed.directory), *args])
        return code, capfdbinary.readouterr()[0].splitlines()

    def expected(threshold: float, top: int | None = None) -> list[bytes]:
        truth = similarity_truth(nci_records, QUERY, threshold)
        return [f"{c}\t{s}\t{sim!r}".encode() for c, s, sim in truth[:top]]

    assert lines("--top", "10") == (0, expected(0.0, 10))
    assert lines("-k", "3") == (0, expected(0.0, 3))
    assert lines("--top", "10", "--threshold", "0.7") == (0 if expected(0.7) else 1, expected(0.7, 10))
    assert lines() == (0 if expected(0.7) else 1, expected(0.7))
