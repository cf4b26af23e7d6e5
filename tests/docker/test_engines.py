"""Remote engines over tcp:// (a loopback listener of the same daemon); unreachable engine, missing image."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.docker.conftest import TCP_PORT
from tests.helpers import gnu_grep, require, shard_files
from workbench.errors import BackendError
from workbench.jobs.grep import GrepJob

pytestmark = pytest.mark.docker
TCP_URL = f"tcp://127.0.0.1:{TCP_PORT}"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


@pytest.fixture(scope="module")
def tcp_engine(docker_client):
    from workbench.containers.engine import connect

    try:
        connect(TCP_URL).close()
        why = ""
    except BackendError as exc:
        why = f"{exc} (.ci/docker.sh starts dockerd with -H {TCP_URL})"
    require("docker", not why, why)
    return TCP_URL


def test_grep_on_a_tcp_engine_equals_gnu_grep(nci_dataset, worker_images, tcp_engine):
    got = sorted(line for r in nci_dataset.run(GrepJob("Cl|Br", extended=True), backend="docker", docker_host=tcp_engine)
                 for line in r.payload.splitlines())
    assert got == gnu_grep(shard_files(nci_dataset.directory), "-E", "-e", "Cl|Br")


def test_cli_grep_with_docker_host_and_engine(nci_dataset, worker_images, tcp_engine):
    out = cli("grep", "[nH]", "-d", str(nci_dataset.directory), "--backend", "docker", "--docker-host", tcp_engine,
              "--engine", "busybox")
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.encode().splitlines()) == gnu_grep(shard_files(nci_dataset.directory), "-e", "[nH]")


def test_unreachable_engine_names_the_host(nci_dataset):
    from workbench.backends.docker import DockerBackend

    with pytest.raises(BackendError, match=r"tcp://127\.0\.0\.1:1\b"):
        DockerBackend(docker_host="tcp://127.0.0.1:1")
    out = cli("grep", "C", "-d", str(nci_dataset.directory), "--backend", "docker", "--docker-host", "tcp://127.0.0.1:1")
    assert out.returncode == 2
    assert out.stderr.startswith("error: cannot reach the Docker engine at tcp://127.0.0.1:1")
    assert "Traceback" not in out.stderr


def test_missing_image_says_to_build(nci_dataset, docker_client, tmp_path):
    out = cli("grep", "C", "-d", str(nci_dataset.directory), "--backend", "docker", "--image", "workbench/no-such:0")
    assert out.returncode == 2
    assert "workbench/no-such:0" in out.stderr and "run `workbench images build`" in out.stderr
    (tmp_path / "images.toml").write_text('[images.gnu-grep]\ntag = "workbench/never-built:0"\n'
                                          'base = "debian:bookworm-slim"\n[jobs]\n"grep/gnu" = "gnu-grep"\n')
    out = cli("grep", "C", "-d", str(nci_dataset.directory), "--backend", "docker",
              env={"WORKBENCH_CONTAINERS": str(tmp_path)})
    assert out.returncode == 2
    assert "run `workbench images build --only gnu-grep`" in out.stderr
