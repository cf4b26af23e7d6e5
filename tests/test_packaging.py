"""The wheel carries what a user needs outside a checkout: image recipes, the image map, job definitions.

Builds the wheel of this checkout and installs it into a fresh virtualenv outside the repository
(its dependencies taken from the test environment's site-packages, the wheel itself --no-deps),
then uses it from a directory that is not the checkout.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel installed; returns its bin directory."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp / "dist"), str(REPO)], check=True, cwd=tmp)
    (wheel,) = (tmp / "dist").glob("workbench-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True)
    venv_python = tmp / "venv" / "bin" / "python"
    site = subprocess.run([str(venv_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # dependencies from the test environment; its .pth files (this checkout's editable install) are not read
    Path(site, "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(venv_python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, cwd=tmp)
    return tmp / "venv" / "bin"


def _wheel_names(installed: Path) -> set[str]:
    (wheel,) = (installed.parent.parent / "dist").glob("workbench-*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


def test_wheel_ships_recipes_image_map_and_job_definitions(installed):
    names = _wheel_names(installed)
    for path in [*REPO.glob("containers/**/*"), *REPO.glob("jobs/*.toml")]:
        if path.is_file():
            assert f"workbench/_data/{path.relative_to(REPO)}" in names


def test_installed_package_finds_its_data_outside_the_checkout(installed, tmp_path):
    code = ("import workbench, workbench.containers.imagemap as m; from workbench.jobs.command import definition_path; "
            "imap = m.load_image_map(); print(workbench.__file__); print(m.containers_dir()); "
            "print(sorted(imap.images)); print((m.containers_dir() / 'rdkit' / 'Dockerfile').is_file()); "
            "print(definition_path('element-census'))")
    proc = subprocess.run([str(installed / "python"), "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    module, recipes, images, dockerfile, job = proc.stdout.splitlines()
    assert not module.startswith(str(REPO)) and not recipes.startswith(str(REPO)) and not job.startswith(str(REPO))
    assert images == str(sorted(["busybox-grep", "gnu-grep", "rdkit"])) and dockerfile == "True"
    assert Path(job).read_text() == (REPO / "jobs" / "element-census.toml").read_text()


def test_installed_cli_runs_a_shipped_job_by_name(installed, tmp_path, nci_dataset):
    wb = str(installed / "workbench")
    proc = subprocess.run([wb, "run", "--job", "count-records", "--dataset", str(nci_dataset.directory)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"{nci_dataset.manifest.records}\n"
    missing = subprocess.run([wb, "run", "--job", "no-such-job", "--dataset", str(nci_dataset.directory)],
                             capture_output=True, text=True, cwd=tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("error: job definition 'no-such-job' does not exist (shipped: count-records,")
