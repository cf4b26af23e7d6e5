"""Each worker image builds from its recipe and carries the pinned tools; bootstrap and list work."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import rendered_report

pytestmark = pytest.mark.docker


def run_in(client, tag: str, argv: list[str]) -> str:
    return client.containers.run(tag, argv, remove=True, network_mode="none").decode()


@pytest.mark.parametrize("name", ["gnu-grep", "busybox-grep", "rdkit"])
def test_image_builds_and_is_labelled(docker_client, worker_images, name):
    from workbench.containers.build import build_image

    tag = build_image(docker_client, worker_images.get(name), log=lambda _: None)
    image = docker_client.images.get(tag)
    assert image.labels["org.workbench.image"] == name
    assert image.attrs["Config"]["User"] == "65534:65534"


def test_gnu_grep_image_has_the_hosts_grep_and_ripgrep(docker_client, worker_images):
    tag = worker_images.get("gnu-grep").tag
    host_grep = subprocess.run(["grep", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    assert run_in(docker_client, tag, ["grep", "--version"]).splitlines()[0] == host_grep
    host_rg = subprocess.run(["rg", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    assert run_in(docker_client, tag, ["rg", "--version"]).splitlines()[0] == host_rg


def test_busybox_image_is_busybox_only(docker_client, worker_images):
    tag = worker_images.get("busybox-grep").tag
    assert docker_client.images.get(tag).attrs["Size"] < 5_000_000
    assert run_in(docker_client, tag, ["sh", "-c", "printf 'CCO\\nCCN\\n' | grep -c N"]).strip() == "1"
    listing = run_in(docker_client, tag, ["ls", "-l", "/bin/grep"])
    assert "-> busybox" in listing


def test_rdkit_image_runs_the_worker_entry_point(docker_client, worker_images):
    import rdkit

    tag = worker_images.get("rdkit").tag
    out = run_in(docker_client, tag, ["python", "-c", "import rdkit, pyarrow, numpy; print(rdkit.__version__)"])
    assert out.strip() == rdkit.__version__
    assert "workbench.containers.worker" in run_in(docker_client, tag, ["python", "-m", "workbench.containers.worker", "--help"])


def test_bootstrap_is_idempotent(docker_client, worker_images):
    from workbench.containers.bootstrap import bootstrap_base

    for base in ("debian:bookworm-slim", "busybox:1.35"):
        assert bootstrap_base(docker_client, base, log=lambda _: None) is False  # present: nothing to do


def test_images_list_cli_shows_name_size_arch():
    out = subprocess.run([sys.executable, "-m", "workbench", "images", "list"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for name in ("gnu-grep", "busybox-grep", "rdkit"):
        row = next(line for line in out.stdout.splitlines() if f" {name} " in line)
        assert "MB" in row and ("linux/amd64" in row or "linux/arm" in row)


def test_image_map_resolves_per_arch(tmp_path):
    from workbench.containers.imagemap import load_image_map
    from workbench.errors import WorkbenchError
    from workbench.jobs.grep import GrepJob

    imap = load_image_map()
    assert imap.for_job(GrepJob("C", engine="busybox")).name == "busybox-grep"
    assert imap.for_job(GrepJob("C", engine="ripgrep")).name == "gnu-grep"
    custom = tmp_path / "images.toml"
    custom.write_text('[images.g]\ntag = "g:1"\nbase = "debian:bookworm-slim"\nplatforms = ["amd64", "armv7"]\n'
                      '[images.g.arch]\narmv7l = "g:1-armv7"\n[jobs]\n"grep/gnu" = "g"\n')
    g = load_image_map(custom).get("g")
    assert (g.tag_for("x86_64"), g.tag_for("armv7")) == ("g:1", "g:1-armv7")
    with pytest.raises(WorkbenchError, match="not built for arm64"):
        g.tag_for("aarch64")
    custom.write_text('[images.g]\ntag = "g:1"\nbase = "x"\n[jobs]\nsubstructure = "nope"\n')
    with pytest.raises(WorkbenchError, match="unknown image 'nope'"):
        load_image_map(custom)


def test_bench_images_table_json_and_plot(nci_dataset, worker_images, tmp_path):
    report, png = tmp_path / "images.json", tmp_path / "images.png"
    out = subprocess.run([sys.executable, "-m", "workbench", "bench", "images", "-d", str(nci_dataset.directory),
                          "-q", "Cl|Br", "-E", "--repeat", "1", "--json", str(report), "--plot", str(png)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    rows = {r["variant"]: r for r in json.loads(report.read_text())["rows"]}
    assert list(rows) == ["local", "gnu-grep", "busybox-grep", "ripgrep"]
    assert len({r["hits"] for r in rows.values()}) == 1 and rows["local"]["hits"] > 0
    assert rows["ripgrep"]["image"] == rows["gnu-grep"]["image"] == worker_images.get("gnu-grep").tag
    assert rows["busybox-grep"]["size_mb"] < rows["gnu-grep"]["size_mb"]
    assert min(r["ratio"] for r in rows.values()) == 1.0
    assert all(r["startup_s"] > 0 for name, r in rows.items() if name != "local")
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "busybox-grep" in out.stdout and "× fastest" in out.stdout
    # the report page of the same run: its table and bar chart, the engine's version, nothing fetched
    dom, (chart,) = rendered_report([report], tmp_path)
    for label in ("local", "gnu-grep", "busybox-grep", "ripgrep", "MB/s"):
        assert f">{label}<" in chart
    assert "<td>Docker engine</td>" in dom and "<td>start-up s</td>" not in dom and "<th>start-up s</th>" in dom
