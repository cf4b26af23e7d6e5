"""A real 3-node testbed (network namespaces + sshd) shared by the cluster tests."""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

import pytest

from tests.helpers import require

NODES = 3


def testbed_missing() -> str | None:
    """Why a testbed cannot be built here, or None."""
    if os.geteuid() != 0:
        return "not root (the testbed creates network namespaces)"
    for tool in ("ip", "unshare", "mount"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    if not (shutil.which("sshd") or Path("/usr/sbin/sshd").exists()):
        return "sshd (openssh-server) is not installed"
    return None


def require_testbed() -> None:
    why = testbed_missing()
    require("ssh", why is None, why or "")


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cluster file of a running 3-node testbed; torn down (and checked) at the end."""
    require_testbed()
    from workbench.testing.testbed import testbed_down, testbed_up

    cluster_file = testbed_up(tmp_path_factory.mktemp("testbed") / "cluster.toml", NODES)
    yield cluster_file
    testbed_down(cluster_file)


@pytest.fixture(scope="session")
def placed(testbed: Path, nci_smi: Path, tmp_path_factory: pytest.TempPathFactory):
    """The NCI set in ~8 shards placed on the testbed with 2 replicas (tests restore what they break)."""
    import workbench as wb
    from workbench.cluster.placement import place

    ds = wb.ingest([nci_smi], tmp_path_factory.mktemp("placed") / "nci", shard_size="32kB")
    place(ds.directory, testbed, "local", replicas=2)
    ds.reload()
    return ds


@pytest.fixture(scope="session")
def _dask_session(testbed: Path, placed) -> Path:
    """``cluster up`` on the testbed for the session; ``cluster down`` at the end."""
    from workbench.cluster.daskcluster import cluster_down, cluster_up, is_up

    cluster_up(testbed, timeout=120)
    yield testbed
    if is_up(testbed):
        cluster_down(testbed)


@pytest.fixture
def dask_cluster(_dask_session: Path) -> Path:
    """The session's Dask cluster, started again if a test stopped it."""
    from workbench.cluster.daskcluster import cluster_up, is_up

    if not is_up(_dask_session):
        cluster_up(_dask_session, timeout=120)
    return _dask_session


def cluster_variant(cluster_file: Path, target: Path, *, head: dict | None = None,
                    nodes: dict[str, dict] | None = None, extra_nodes: list[dict] | None = None) -> Path:
    """A copy of a cluster file with some settings changed (per node by name)."""
    from workbench.cluster.inventory import dump_cluster

    data = tomllib.loads(Path(cluster_file).read_text())
    data["cluster"].update(head or {})
    for node in data["nodes"]:
        node.update((nodes or {}).get(node["name"], {}))
    target.write_text(dump_cluster(data["cluster"], data["nodes"] + (extra_nodes or [])))
    return target


def node_file(cluster_file: Path, node: str, placed_dataset, rel: str) -> Path:
    """Where a placed file lives on a testbed node, as a host path."""
    from workbench.testing.testbed import node_storage

    return node_storage(cluster_file, node) / placed_dataset.manifest.placement["dataset_id"] / rel
