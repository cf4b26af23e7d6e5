"""Every notebook in examples/ runs top to bottom in a fresh kernel, with tables, plots and right answers."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))

pytestmark = [pytest.mark.slow, pytest.mark.docker]  # the quick start compares worker images when Docker is here


def execute(path: Path, cwd: Path):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def outputs(nb, tag: str | None = None) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" and (tag is None or tag in c.metadata.get("tags", []))
            for o in c.outputs]


def html(outs: list[dict]) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in outs)


def result(nb, tag: str) -> str:
    """The value a tagged cell ends with (its execute_result)."""
    return "".join(o["data"]["text/plain"] for o in outputs(nb, tag) if o.output_type == "execute_result")


def text(outs: list[dict]) -> str:
    return "".join(o.get("data", {}).get("text/plain", "") + o.get("text", "") for o in outs)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Each notebook executed once for the module: path -> the notebook with its outputs."""
    cache: dict[Path, object] = {}

    def get(path: Path):
        if path not in cache:
            cache[path] = execute(path, tmp_path_factory.mktemp(path.stem))
        return cache[path]

    return get


def test_there_is_a_notebook():
    assert [p.name for p in NOTEBOOKS] and "quickstart.ipynb" in [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_a_fresh_kernel(path, executed):
    nb = executed(path)  # nbclient raises CellExecutionError on any error
    outs = outputs(nb)
    assert not [o for o in outs if o.output_type == "error"]
    assert "<table" in html(outs), "no table shown"
    assert any("image/png" in o.get("data", {}) for o in outs), "no plot shown"
    assert "Traceback" not in text(outs)


def test_quickstart_answers_are_right(executed, nci_smi):
    """The quick start's figures against independent ground truth: GNU grep and RDKit on the source file."""
    from rdkit import Chem

    nb = executed(ROOT / "examples" / "quickstart.ipynb")
    assert "4,999" in html(outputs(nb, "dataset"))  # the dataset's HTML table
    grep = subprocess.run(["grep", "-cF", "C(=O)N", str(nci_smi)], capture_output=True, text=True)
    assert result(nb, "amides") == grep.stdout.strip()
    query = Chem.MolFromSmarts("c1ccccc1[N+](=O)[O-]")
    mols = [Chem.MolFromSmiles(line.split()[0]) for line in nci_smi.read_text().splitlines()]
    nitro = sum(1 for m in mols if m is not None and m.HasSubstructMatch(query))
    assert result(nb, "nitro") == str(nitro)
    # similarity: the top 10 by Morgan (r=2, 2048 bits) Tanimoto, as RDKit computes it here
    from rdkit import DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    probe = gen.GetFingerprint(Chem.MolFromSmiles("CC(=O)Nc1ccc(O)cc1"))
    ids = [int(line.split()[1]) for line in nci_smi.read_text().splitlines()]
    truth = {cid: DataStructs.TanimotoSimilarity(probe, gen.GetFingerprint(m)) for cid, m in zip(ids, mols) if m is not None}
    shown = [(int(cid), float(sim)) for cid, sim in
             re.findall(r"<tr>\s*<th>\d+</th>\s*<td>(\d+)</td>\s*<td>[^<]*</td>\s*<td>([\d.]+)</td>", html(outputs(nb, "similar")))]
    assert len(shown) == 10
    assert all(abs(truth[cid] - sim) < 1e-6 for cid, sim in shown)
    assert [round(sim, 6) for _, sim in shown] == [round(v, 6) for v in sorted(truth.values(), reverse=True)[:10]]
    stats = html(outputs(nb, "stats"))
    assert "per node" in stats and "<table" in stats
    assert "cold" in html(outputs(nb, "scaling")) and "warm" in html(outputs(nb, "scaling"))
    assert any("image/png" in o.get("data", {}) for o in outputs(nb, "scaling-plot"))
    progress = html(outputs(nb))
    assert "<progress" in progress and "Dask dashboard" in progress  # the index build ran on a process cluster
    images = outputs(nb, "images")
    if os.environ.get("WORKBENCH_REQUIRE_DOCKER"):
        assert "busybox-grep" in html(images), text(images)
        assert any("image/png" in o.get("data", {}) for o in images)
