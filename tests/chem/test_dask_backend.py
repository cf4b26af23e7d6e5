"""Chemistry jobs on a real Dask scheduler with worker processes: same results as RDKit directly."""

from __future__ import annotations

from tests.backends.test_dask import scheduler  # noqa: F401  (module-scoped fixture: scheduler + 2 workers)
from tests.chem.conftest import similarity_truth, substructure_truth


def test_index_substructure_and_similar_on_dask(scheduler, tmp_path, nci_dataset, nci_records):  # noqa: F811
    import shutil

    import workbench as wb

    shutil.copytree(nci_dataset.directory, tmp_path / "ds")
    ds = wb.open_dataset(tmp_path / "ds")
    options = {"backend": "dask", "scheduler": scheduler}
    report = ds.build_index(**options)
    assert report.built == len(ds.manifest.shards)
    assert sorted(report.invalid["cid"].to_pylist()) == sorted(r.cid for r in nci_records if r.mol is None)
    for query in ("c1ccncc1", "[$([NX3;H2,H1;!$(NC=O)])]"):
        got = ds.substructure(query, **options)
        assert sorted(zip(got["cid"].to_pylist(), got["smiles"].to_pylist())) == substructure_truth(nci_records, query)
    got = ds.similar("CC(=O)Nc1ccc(O)cc1", threshold=0.3, **options)
    assert list(zip(got["cid"].to_pylist(), got["smiles"].to_pylist(), got["similarity"].to_pylist())) == \
        similarity_truth(nci_records, "CC(=O)Nc1ccc(O)cc1", 0.3)
