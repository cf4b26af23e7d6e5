"""Docker fixtures: a reachable engine (else skip, or fail under WORKBENCH_REQUIRE_DOCKER), built images."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.helpers import require

TCP_PORT = int(os.environ.get("WORKBENCH_DOCKER_TCP_PORT", "23750"))
#: GNU grep backreferences are slow (about 4 s/MB here): a grep that keeps workers busy.
SLOW_PATTERN = r"\(C\).*\1.*\1.*N"


@pytest.fixture(scope="session")
def docker_client():
    from workbench.containers.engine import connect
    from workbench.errors import BackendError

    try:
        client, why = connect(), ""
    except BackendError as exc:
        client, why = None, str(exc)
    require("docker", client is not None, why)
    return client


@pytest.fixture(scope="session")
def worker_images(docker_client):
    """Base images and worker images present and current (seconds when `.ci/docker.sh` built them)."""
    from workbench.containers.bootstrap import bootstrap_base
    from workbench.containers.build import build_image
    from workbench.containers.imagemap import load_image_map

    imap = load_image_map()
    for spec in imap.images.values():
        bootstrap_base(docker_client, spec.base, log=lambda _: None)
        build_image(docker_client, spec, log=lambda _: None)
    return imap


def our_containers(client, ignore: frozenset[str] = frozenset()) -> list:
    """Worker containers (by label), but those in ``ignore`` (ids present before a test started)."""
    from workbench.containers.workers import RUN_LABEL

    return [c for c in client.containers.list(all=True, sparse=True, filters={"label": RUN_LABEL}) if c.id not in ignore]


def running_containers(client, ignore: frozenset[str] = frozenset()) -> list:
    """Our worker containers that have started (``our_containers`` also lists ones being created)."""
    return [c for c in our_containers(client, ignore) if c.status == "running"]


def wait_for_no_containers(client, timeout: float = 15.0, ignore: frozenset[str] = frozenset()) -> list:
    """Our containers still present after ``timeout`` (auto-removal is asynchronous)."""
    deadline = time.monotonic() + timeout
    while (left := our_containers(client, ignore)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture
def existing_containers(docker_client) -> frozenset[str]:
    """Worker containers of runs outside this test (none in CI): tests look only at their own."""
    return frozenset(c.id for c in our_containers(docker_client))


@pytest.fixture(scope="session")
def slow_dataset(tmp_path_factory, nci_smi: Path):
    """The NCI set ten times over (about 2 MB) in 64 kB shards: SLOW_PATTERN takes seconds on it."""
    import workbench as wb

    smiles = [line.split()[0] for line in nci_smi.read_text().splitlines() if line.strip()]
    tmp = tmp_path_factory.mktemp("slow")
    src = tmp / "slow.tsv"
    src.write_text("".join(f"{i}\t{s}\n" for i, s in enumerate(smiles * 10, 1)))
    return wb.ingest([src], tmp / "ds", shard_size="64kB", format="cid-smiles")
