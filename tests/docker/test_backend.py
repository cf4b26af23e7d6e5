"""The docker backend gives the local backend's results exactly: every grep engine, substructure."""

from __future__ import annotations

import pytest

from tests.backends.conformance import BackendConformance
from tests.docker.conftest import our_containers, wait_for_no_containers
from tests.helpers import gnu_grep, shard_files
from workbench.backends import close_all
from workbench.jobs.grep import GrepJob

pytestmark = pytest.mark.docker

PATTERNS = [("C(=O)N", {"fixed": True}), ("Cl|Br", {"extended": True}), ("[nH]", {}), ("cl", {"ignore_case": True}),
            ("^1[0-9]{2}\t", {"extended": True})]


def lines(dataset, job, **options) -> list[bytes]:
    return sorted(line for r in dataset.run(job, **options) for line in r.payload.splitlines())


class TestDockerConformance(BackendConformance):
    @pytest.fixture
    def run_options(self, worker_images):
        return {"backend": "docker"}

    @pytest.fixture(autouse=True)
    def no_container_left(self, docker_client, existing_containers):
        """Once the backend is closed (as at exit) after success, a failing shard or a rejected pattern,
        no worker container is left."""
        yield
        close_all()
        assert wait_for_no_containers(docker_client, ignore=existing_containers) == []


@pytest.mark.parametrize("engine", ["gnu", "busybox", "ripgrep"])
@pytest.mark.parametrize("pattern,flags", PATTERNS)
def test_grep_equals_local_backend(nci_dataset, worker_images, engine, pattern, flags):
    job = GrepJob(pattern, engine=engine, **flags)
    expected = lines(nci_dataset, job, backend="local")
    assert lines(nci_dataset, job, backend="docker") == expected
    assert expected


@pytest.mark.parametrize("engine", ["gnu", "busybox", "ripgrep"])
def test_count_only_per_engine(nci_dataset, worker_images, engine):
    run = nci_dataset.run(GrepJob("N", engine=engine, count_only=True), backend="docker")
    assert sum(r.hits for r in run) == len(gnu_grep(shard_files(nci_dataset.directory), "-e", "N"))


def test_one_container_per_shard_mode_gives_the_same_lines(nci_dataset, worker_images):
    from workbench.backends.docker import DockerBackend

    job = GrepJob("[N+]([O-])=O", fixed=True)
    with DockerBackend(workers=2, mode="per-shard") as backend:
        got = sorted(line for r in backend.map_shards(job, nci_dataset.directory, nci_dataset.manifest)
                     for line in r.payload.splitlines())
    assert got == gnu_grep(shard_files(nci_dataset.directory), "-F", "-e", "[N+]([O-])=O")


def test_containers_serve_every_run_until_the_backend_closes(nci_dataset, worker_images, docker_client,
                                                             existing_containers):
    from workbench.backends.docker import DockerBackend

    with DockerBackend(workers=2) as backend:
        first = list(backend.map_shards(GrepJob("C"), nci_dataset.directory, nci_dataset.manifest))
        second = list(backend.map_shards(GrepJob("N", engine="ripgrep"), nci_dataset.directory, nci_dataset.manifest))
        workers = {r.worker for r in first}
        assert 1 <= len(workers) <= 2  # at most one container per worker serves every shard
        assert {r.worker for r in second} <= workers  # and the next run's, another job on the same image
        assert {r.node for r in first} == {docker_client.info()["Name"]}
        assert {c.attrs["Names"][0].lstrip("/") for c in our_containers(docker_client, existing_containers)} == workers
    assert wait_for_no_containers(docker_client, ignore=existing_containers) == []


@pytest.mark.parametrize("query", ["c1ccccc1O", "C(=O)N", "[#7;R]", "[Cl,Br,I]"])
def test_substructure_equals_local_and_rdkit(nci_dataset, worker_images, query):
    from tests.chem.conftest import read_records, substructure_truth
    from workbench.jobs.substructure import SubstructureJob

    job = SubstructureJob(query=query)
    docker_lines = lines(nci_dataset, job, backend="docker")
    assert docker_lines == lines(nci_dataset, job, backend="local")
    truth = substructure_truth(read_records(nci_dataset.directory), query)
    assert sorted((int(c), s.decode()) for c, s in (line.split(b"\t", 1) for line in docker_lines)) == truth
    assert truth


def test_substructure_on_an_index_equals_local(tmp_path, nci_dataset, worker_images):
    from tests.chem.conftest import indexed_copy
    from workbench.jobs.substructure import SubstructureJob

    indexed = indexed_copy(nci_dataset.directory, tmp_path / "ds")
    for query in ("c1ccncc1", "S(=O)(=O)N"):
        job = SubstructureJob(query=query)
        assert lines(indexed, job, backend="docker") == lines(indexed, job, backend="local")


def test_damaged_index_file_is_searched_by_text_with_its_note(tmp_path, nci_dataset, worker_images):
    """The container worker checks index files too and frames the shard's note back to the client."""
    from tests.chem.conftest import indexed_copy, read_records, substructure_truth
    from workbench.jobs.substructure import SubstructureJob

    indexed = indexed_copy(nci_dataset.directory, tmp_path / "ds")
    shard = indexed.manifest.shards[1]
    path = indexed.directory / shard.index_path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    run = indexed.run(SubstructureJob(query="c1ccncc1"), backend="docker")
    from workbench.errors import WorkbenchNote

    with pytest.warns(WorkbenchNote):
        got = sorted(line for r in run for line in r.payload.splitlines())
    truth = substructure_truth(read_records(indexed.directory), "c1ccncc1")
    assert got == sorted(f"{c}\t{s}".encode() for c, s in truth)
    assert run.notes == [f"shard {shard.name}: its index file {shard.index_path} is damaged or was replaced (its "
                         "sha256 differs from the one recorded when it was built): searched its SMILES text instead "
                         "(`workbench index` rebuilds it)"]


def test_index_files_are_hashed_once_per_engine_not_once_per_container(tmp_path, nci_dataset, worker_images,
                                                                        docker_client):
    """The rdkit worker remembers the index files it hashed in the engine's cache volume: the next
    command's new containers only ``stat`` them, and a file changed since is hashed (and refused) again."""
    import time
    from pathlib import Path

    from tests.chem.conftest import indexed_copy
    from workbench.containers.workers import CACHE_VOLUME
    from workbench.errors import WorkbenchNote
    from workbench.jobs.substructure import SubstructureJob

    indexed = indexed_copy(nci_dataset.directory, tmp_path / "ds")
    time.sleep(2.1)  # files changed in the last 2 s are hashed every time, never remembered
    job = SubstructureJob(query="c1ccncc1")

    def stamps() -> dict[str, int]:
        volume = docker_client.volumes.get(CACHE_VOLUME)  # created by the first container mounting it
        hashed = Path(volume.attrs["Mountpoint"], "hashed")  # an engine on this host: readable here (root)
        return {p.name: p.stat().st_mtime_ns for p in hashed.iterdir()} if hashed.is_dir() else {}

    def fresh_containers_run() -> list[bytes]:
        close_all()  # the next run starts new containers, with nothing remembered in their processes
        return lines(indexed, job, backend="docker")

    expected = lines(indexed, job, backend="local")
    close_all()
    before = stamps() if docker_client.volumes.list(filters={"name": CACHE_VOLUME}) else {}
    assert fresh_containers_run() == expected
    first = stamps()
    assert len(set(first) - set(before)) == len(indexed.manifest.shards)  # one per index file, by nobody
    assert fresh_containers_run() == expected
    assert stamps() == first  # nothing hashed (a hash re-stamps its file version)

    path = indexed.directory / indexed.manifest.shards[0].index_path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    close_all()
    with pytest.warns(WorkbenchNote, match="damaged or was replaced"):
        assert lines(indexed, job, backend="docker") == expected
    close_all()


def test_similarity_equals_local_and_rdkit(nci_dataset, worker_images):
    from tests.chem.conftest import read_records, similarity_truth
    from workbench.jobs.similarity import SimilarityJob

    job = SimilarityJob(smiles="CC(=O)Nc1ccc(O)cc1", threshold=0.3)
    docker_lines = lines(nci_dataset, job, backend="docker")
    assert docker_lines == lines(nci_dataset, job, backend="local")
    truth = similarity_truth(read_records(nci_dataset.directory), "CC(=O)Nc1ccc(O)cc1", 0.3)
    assert sorted(int(line.split(b"\t", 1)[0]) for line in docker_lines) == sorted(cid for cid, _, _ in truth)
    assert truth


def test_engine_tool_needed_in_the_image_not_on_the_host(nci_dataset, worker_images, tmp_path):
    """`--engine busybox` with no busybox on this host's PATH: the image brings it."""
    import os
    import shutil
    import subprocess
    import sys

    bin_dir = tmp_path / "bin"  # GNU grep only; neither busybox nor rg
    bin_dir.mkdir()
    (bin_dir / "grep").symlink_to(shutil.which("grep"))
    env = {**os.environ, "PATH": str(bin_dir)}
    proc = subprocess.run([sys.executable, "-m", "workbench", "grep", "-F", "C(=O)N", "--dataset",
                           str(nci_dataset.directory), "--backend", "docker", "--engine", "busybox"],
                          capture_output=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.splitlines()) == gnu_grep(shard_files(nci_dataset.directory), "-F", "-e", "C(=O)N")
