"""The local backend's worker processes: plain scripts work as written; a lost worker is replaced."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.chem.conftest import indexed_copy, read_records, similarity_truth, substructure_truth


def test_plain_script_without_main_guard(nci_dataset, nci_records, tmp_path):
    """Worker processes do not re-import the caller's ``__main__`` (LocalCluster's spawned ones do)."""
    script = tmp_path / "count_pyridines.py"
    script.write_text(textwrap.dedent(f"""\
        import workbench as wb

        ds = wb.open_dataset({str(nci_dataset.directory)!r})
        table = ds.substructure("c1ccncc1", workers=2)
        print("hits", table.num_rows)
        print("again", ds.substructure("[#7]", workers=2).num_rows)
        """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"hits {len(substructure_truth(nci_records, 'c1ccncc1'))}",
                                        f"again {len(substructure_truth(nci_records, '[#7]'))}"]
    assert "Traceback" not in proc.stderr and "Nanny" not in proc.stderr


def test_workers_are_loopback_subprocesses_and_a_lost_one_is_replaced(nci_dataset, nci_records):
    import psutil

    from workbench.backends import get_backend

    assert nci_dataset.substructure("c1ccncc1", workers=2).num_rows == len(substructure_truth(nci_records, "c1ccncc1"))
    client = get_backend("local", workers=2).client()
    workers = client.scheduler_info(n_workers=-1)["workers"]
    assert len(workers) == 2 and all(address.startswith("tcp://127.0.0.1:") for address in workers)
    assert client.scheduler.address.startswith("tcp://127.0.0.1:")
    pids = client.run(lambda: __import__("os").getpid())
    psutil.Process(next(iter(pids.values()))).kill()  # as a crash in native code would
    truth = substructure_truth(nci_records, "[#7]")
    assert nci_dataset.substructure("[#7]", workers=2).num_rows == len(truth)
    assert nci_dataset.substructure("[#7]", workers=2).num_rows == len(truth)
    assert len(get_backend("local", workers=2).client().scheduler_info(n_workers=-1)["workers"]) == 2


def test_each_nanny_forks_its_worker_and_the_caller_s_environment_is_left_as_it_was(nci_dataset, nci_records):
    """Forked, a worker has its Nanny's command line (spawned, it would be ``spawn_main``), and the
    start method reaches only the ``dask spec`` interpreters, never this process's environment."""
    import os

    import psutil

    from workbench.backends import close_all, get_backend
    from workbench.backends.local import worker_environ

    close_all()  # a pool of its own
    assert nci_dataset.substructure("c1ccncc1", workers=2).num_rows == len(substructure_truth(nci_records, "c1ccncc1"))
    assert not set(worker_environ()) & set(os.environ)
    pids = get_backend("local", workers=2).client().run(lambda: __import__("os").getpid())
    for pid in pids.values():
        worker = psutil.Process(pid)
        nanny = worker.parent()
        assert worker.cmdline() == nanny.cmdline() and "distributed.Nanny" in " ".join(worker.cmdline())
        # the Nanny started with them (/proc/PID/environ is the environment a process was started with)
        started_with = dict(v.split("=", 1) for v in Path(f"/proc/{nanny.pid}/environ").read_text().split("\0") if v)
        assert started_with["MALLOC_TRIM_THRESHOLD_"] == "65536" and started_with["OPENBLAS_NUM_THREADS"] == "1"
        assert started_with["ARROW_DEFAULT_MEMORY_POOL"] == "system"
    pools = get_backend("local", workers=2).client().run(lambda: __import__("pyarrow").default_memory_pool().backend_name)
    assert set(pools.values()) == {"system"}


def test_worker_processes_never_import_pandas(unparsable_dataset, nci_records, tmp_path):
    """pyarrow imports pandas, when installed, on its first ``pa.array``, ``to_numpy`` or
    ``pa.scalar``: ~30 MB and ~0.2 s in every worker. Building an index (with unparsable records)
    and searching it (few and many hits, similarity) must not: results checked against RDKit."""
    pytest.importorskip("pandas")  # installed with the test extras; without it there is nothing to import
    import workbench as wb
    from workbench.backends import close_all, get_backend

    close_all()  # fresh worker processes
    ds = indexed_copy(unparsable_dataset.directory, tmp_path / "ds")
    records = read_records(ds.directory)
    for query in ("c1ccncc1", "[#6]", "[$(C=O)]"):
        table = ds.substructure(query, workers=2)
        assert sorted(zip(table["cid"].to_pylist(), table["smiles"].to_pylist())) == substructure_truth(records, query)
    assert ds.substructure("[#6]", workers=2, limit=3).num_rows == 3
    table = ds.similar("c1ccccc1O", threshold=0.3, workers=2)
    assert table["cid"].to_pylist() == [row[0] for row in similarity_truth(records, "c1ccccc1O", 0.3)]
    text = wb.open_dataset(unparsable_dataset.directory).substructure("c1ccncc1", workers=2)  # the text path
    assert text.num_rows == len(substructure_truth(records, "c1ccncc1"))
    imported = get_backend("local", workers=2).client().run(lambda: "pandas" in __import__("sys").modules)
    assert len(imported) == 2 and not any(imported.values())


def test_index_build_and_inspection_leave_pandas_unimported_in_the_caller(tmp_path):
    """``build_index`` (here: no unparsable records, an empty invalid list) and ``index_rows`` in a
    fresh interpreter: pyarrow's pandas import would cost the CLI command ~0.2 s and ~30 MB."""
    pytest.importorskip("pandas")
    (tmp_path / "a.tsv").write_text("".join(f"{i}\tc1ccccc1{'C' * (i % 5)}\n" for i in range(1, 200)))
    code = textwrap.dedent(f"""\
        import sys
        from pathlib import Path
        import workbench as wb
        from workbench.storage.index import index_rows
        ds = wb.ingest([{str(tmp_path / "a.tsv")!r}], {str(tmp_path / "ds")!r}, format="cid-smiles")
        report = ds.build_index(workers=2)
        rows = sum(index_rows(str(p)).num_rows for p in Path({str(tmp_path / "ds" / "index")!r}).glob("*.arrow"))
        print(report.invalid.num_rows, rows, "pandas" in sys.modules)
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "199", "False"]
