"""ARM images (arm64, armv7) built and run on this host under qemu user emulation: each result
equals the amd64 image's and the ground truth (GNU grep over the same lines, RDKit called directly).

Needs qemu-user-static + binfmt-support with the handlers enabled (`.ci/run` sets them up);
skips without them unless WORKBENCH_REQUIRE_QEMU is set. The first build takes minutes
(`.ci/docker.sh` makes it beforehand; then cached layers take seconds).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.docker.conftest import our_containers, wait_for_no_containers
from tests.helpers import gnu_grep, require, shard_files
from workbench.backends import close_all
from workbench.jobs.grep import GrepJob

pytestmark = pytest.mark.docker

ARCHES = ["arm64", "armv7"]
MACHINE = {"arm64": "aarch64", "armv7": "armv7l"}
DPKG_ARCH = {"arm64": "arm64", "armv7": "armhf"}
GREPS = [("C(=O)N", {"fixed": True}, ["-F"]), ("Cl|Br", {"extended": True}, ["-E"]),
         ("C(=O)N.*Cl", {}, ["-G"])]


def test_platform_names():
    from workbench.containers.imagemap import arch_base, parse_platform
    from workbench.errors import WorkbenchError

    assert [parse_platform(p) for p in ("linux/arm64", "linux/arm/v7", "linux/amd64", "aarch64", "armhf")] == \
        ["arm64", "armv7", "amd64", "arm64", "armv7"]
    assert arch_base("debian:bookworm-slim", "arm64") == "debian:bookworm-slim-arm64"
    with pytest.raises(WorkbenchError, match="unknown platform 'linux/s390x'"):
        parse_platform("linux/s390x")


@pytest.fixture(scope="module")
def arm_images(docker_client, worker_images):
    """The base images and worker images of every ARM platform each recipe supports; at the end
    (backends closed) no worker container is left."""
    from workbench.containers.bootstrap import bootstrap_base
    from workbench.containers.build import build_image
    from workbench.containers.emulation import emulation_problem
    from workbench.containers.imagemap import host_arch

    if host_arch() != "amd64":
        pytest.skip("these tests emulate ARM on an amd64 host")
    problems = [f"{arch}: {p}" for arch in ARCHES if (p := emulation_problem(arch))]
    require("qemu", not problems, "; ".join(problems))
    before = frozenset(c.id for c in our_containers(docker_client))  # other runs' (none in CI)
    for arch in ARCHES:
        for spec in worker_images.images.values():
            if arch in spec.platforms:
                bootstrap_base(docker_client, spec.base, arch=arch, log=lambda _: None)
                build_image(docker_client, spec, arch, log=lambda _: None)
    yield worker_images
    close_all()
    assert wait_for_no_containers(docker_client, ignore=before) == []


def run_in(client, tag: str, argv: list[str]) -> str:
    return client.containers.run(tag, argv, remove=True, network_mode="none").decode()


def lines(dataset, job, **options) -> list[bytes]:
    return sorted(line for r in dataset.run(job, **options) for line in r.payload.splitlines())


@pytest.mark.parametrize("name,arch", [("gnu-grep", "arm64"), ("gnu-grep", "armv7"), ("busybox-grep", "arm64"),
                                       ("busybox-grep", "armv7"), ("rdkit", "arm64")])
def test_image_is_of_the_foreign_architecture(docker_client, arm_images, name, arch):
    from workbench.containers.build import image_arch

    spec = arm_images.get(name)
    tag = spec.tag_for(arch)
    image = docker_client.images.get(tag)
    assert image_arch(image.attrs) == arch and tag != spec.tag
    assert image.labels["org.workbench.image"] == name and image.attrs["Config"]["User"] == "65534:65534"
    assert run_in(docker_client, tag, ["uname", "-m"]).strip() == MACHINE[arch]
    if name == "gnu-grep":
        assert run_in(docker_client, tag, ["dpkg", "--print-architecture"]).strip() == DPKG_ARCH[arch]
        host = subprocess.run(["grep", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
        assert run_in(docker_client, tag, ["grep", "--version"]).splitlines()[0] == host
    if name == "rdkit":
        import rdkit

        out = run_in(docker_client, tag, ["python", "-c", "import platform, rdkit, pyarrow, numpy; "
                                          "print(platform.machine(), rdkit.__version__)"])
        assert out.split() == [MACHINE[arch], rdkit.__version__]


@pytest.mark.parametrize("arch", ARCHES)
@pytest.mark.parametrize("engine", ["gnu", "busybox"])
@pytest.mark.parametrize("pattern,flags,grep_flags", GREPS)
def test_grep_equals_amd64_and_gnu_grep(nci_dataset, arm_images, arch, engine, pattern, flags, grep_flags):
    job = GrepJob(pattern, engine=engine, **flags)
    truth = gnu_grep(shard_files(nci_dataset.directory), *grep_flags, "-e", pattern)
    amd64 = lines(nci_dataset, job, backend="docker")
    assert lines(nci_dataset, job, backend="docker", platform=arch) == amd64 == truth
    assert truth


@pytest.mark.parametrize("arch", ARCHES)
def test_grep_count_equals_amd64(nci_dataset, arm_images, arch):
    job = GrepJob("N", count_only=True)
    counts = {r.shard: r.hits for r in nci_dataset.run(job, backend="docker", platform=arch)}
    assert counts == {r.shard: r.hits for r in nci_dataset.run(job, backend="docker")}
    assert sum(counts.values()) == len(gnu_grep(shard_files(nci_dataset.directory), "-e", "N"))


@pytest.mark.parametrize("query", ["c1ccccc1O", "[#7;R]"])
def test_substructure_on_arm64_equals_amd64_and_rdkit(nci_dataset, arm_images, query):
    from tests.chem.conftest import read_records, substructure_truth
    from workbench.jobs.substructure import SubstructureJob

    job = SubstructureJob(query=query)
    arm = lines(nci_dataset, job, backend="docker", platform="linux/arm64")
    assert arm == lines(nci_dataset, job, backend="docker")
    truth = substructure_truth(read_records(nci_dataset.directory), query)
    assert sorted((int(c), s.decode()) for c, s in (line.split(b"\t", 1) for line in arm)) == truth
    assert truth


def test_similarity_on_arm64_equals_amd64_and_rdkit(nci_dataset, arm_images):
    from tests.chem.conftest import read_records, similarity_truth
    from workbench.jobs.similarity import SimilarityJob

    job = SimilarityJob(smiles="CC(=O)Nc1ccc(O)cc1", threshold=0.3)
    arm = lines(nci_dataset, job, backend="docker", platform="arm64")
    assert arm == lines(nci_dataset, job, backend="docker")  # the same similarity values, to the last digit
    truth = similarity_truth(read_records(nci_dataset.directory), "CC(=O)Nc1ccc(O)cc1", 0.3)
    assert sorted(int(line.split(b"\t", 1)[0]) for line in arm) == sorted(cid for cid, _, _ in truth)
    assert truth


def test_arm64_reads_an_index_built_on_amd64(tmp_path, nci_dataset, arm_images):
    """Index files travel between architectures: the arm64 worker searches an index this host built."""
    from tests.chem.conftest import indexed_copy
    from workbench.jobs.similarity import SimilarityJob
    from workbench.jobs.substructure import SubstructureJob

    indexed = indexed_copy(nci_dataset.directory, tmp_path / "ds")
    for job in (SubstructureJob(query="S(=O)(=O)N"), SimilarityJob(smiles="c1ccncc1", threshold=0.25)):
        arm = lines(indexed, job, backend="docker", platform="arm64")
        assert arm == lines(indexed, job, backend="local") == lines(nci_dataset, job, backend="local")
        assert arm


def test_an_engine_reporting_arm_gets_its_image_from_the_map(nci_dataset, arm_images):
    """What a Raspberry Pi's engine does (Architecture: aarch64 / armv7l), without --platform."""
    from workbench.backends.docker import DockerBackend
    from workbench.containers.engine import DEFAULT_HOST, connect
    from workbench.containers.pool import Engine

    for arch in ARCHES:
        pi = Engine(f"pi-{arch}", DEFAULT_HOST, connect(), arch, 2)  # this engine, as a board's would report
        job = GrepJob("Cl|Br", extended=True)
        with DockerBackend(engines=[pi]) as backend:
            assert backend.resolve_image(job)[0] == f"workbench/gnu-grep:1-{arch}"
            results = list(backend.map_shards(job, nci_dataset.directory, nci_dataset.manifest))
        assert {r.node for r in results} == {f"pi-{arch}"}
        got = sorted(line for r in results for line in r.payload.splitlines())
        assert got == gnu_grep(shard_files(nci_dataset.directory), "-E", "-e", "Cl|Br")


def test_an_image_of_another_architecture_is_refused(tmp_path, monkeypatch, nci_dataset, arm_images):
    from workbench.backends.docker import DockerBackend
    from workbench.errors import BackendError

    with pytest.raises(BackendError, match=r"gnu-grep:1-arm64 .* built for arm64, not amd64: pass --platform linux/arm64"):
        DockerBackend(image="workbench/gnu-grep:1-arm64").resolve_image(GrepJob("C"))
    custom = tmp_path / "images.toml"  # a map whose arm64 tag is really the amd64 build
    custom.write_text('[images.gnu-grep]\ntag = "workbench/gnu-grep:1"\nbase = "debian:bookworm-slim"\n'
                      'platforms = ["amd64", "arm64"]\n[jobs]\n"grep/gnu" = "gnu-grep"\n')
    monkeypatch.setenv("WORKBENCH_CONTAINERS", str(tmp_path))
    with pytest.raises(BackendError, match=r"built for amd64, not arm64: run `workbench images build --only "
                                           r"gnu-grep --platform linux/arm64`"):
        DockerBackend(platform="linux/arm64").resolve_image(GrepJob("C"))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True, timeout=600)


def test_cli_platform_on_job_commands(nci_dataset, arm_images):
    ds = str(nci_dataset.directory)
    out = cli("grep", "-F", "C(=O)N", "-d", ds, "--backend", "docker", "--platform", "linux/arm/v7", "--engine", "busybox")
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.encode().splitlines()) == gnu_grep(shard_files(nci_dataset.directory), "-F", "-e", "C(=O)N")
    out = cli("substructure", "c1ccccc1O", "-d", ds, "--backend", "docker", "--platform", "linux/arm64", "--count")
    local = cli("substructure", "c1ccccc1O", "-d", ds, "--count")
    assert (out.returncode, out.stdout) == (0, local.stdout) and int(local.stdout) > 0, out.stderr
    for args, message in [
        (("grep", "C", "-d", ds, "--platform", "linux/arm64"), "--platform need --backend docker"),
        (("grep", "C", "-d", ds, "--backend", "docker", "--platform", "linux/s390x"), "unknown platform"),
        (("similar", "c1ccccc1O", "-d", ds, "--backend", "docker", "--platform", "linux/arm/v7"),
         "image 'rdkit' is not built for armv7"),
    ]:
        out = cli(*args)
        error = out.stderr.strip().splitlines()[-1]  # after any note
        assert out.returncode == 2 and error.startswith("error: ") and message in error, out.stderr
        assert "Traceback" not in out.stderr


def test_images_list_and_build_for_a_platform(arm_images):
    out = cli("images", "list", "--platform", "linux/arm64")
    assert out.returncode == 0, out.stderr
    for name in ("gnu-grep", "busybox-grep", "rdkit"):
        row = next(line for line in out.stdout.splitlines() if f" {name} " in line)
        assert f"workbench/{name}:1-arm64" in row and "linux/arm64" in row
    out = cli("images", "build", "--platform", "linux/arm/v7")  # cached: seconds
    assert out.returncode == 0, out.stderr
    assert "rdkit: skipped, not built for armv7" in out.stderr and "built workbench/busybox-grep:1-armv7" in out.stderr
    out = cli("images", "build", "--only", "rdkit", "--platform", "linux/arm/v7")
    assert out.returncode == 2 and "not built for armv7" in out.stderr


def test_bootstrap_for_a_platform_is_idempotent_and_a_missing_base_is_explained(docker_client, arm_images):
    from workbench.containers.bootstrap import bootstrap_base
    from workbench.containers.build import base_image
    from workbench.containers.imagemap import ImageSpec
    from workbench.errors import WorkbenchError

    for arch in ARCHES:
        for base in ("debian:bookworm-slim", "busybox:1.35"):
            assert bootstrap_base(docker_client, base, arch=arch, log=lambda _: None) is False
    assert base_image(docker_client, arm_images.get("gnu-grep"), "armv7") == "debian:bookworm-slim-armv7"
    spec = ImageSpec("x", arm_images.get("gnu-grep").recipe, "x:1", "busybox:0.0", platforms=("amd64", "arm64"))
    with pytest.raises(WorkbenchError, match=r"no arm64 base image for x \(busybox:0.0-arm64\): run `workbench "
                                             r"images bootstrap --platform linux/arm64`"):
        base_image(docker_client, spec, "arm64")


def test_bench_images_puts_platforms_side_by_side(nci_dataset, arm_images, tmp_path):
    report = tmp_path / "images.json"
    out = cli("bench", "images", "-d", str(nci_dataset.directory), "-q", "Cl|Br", "-E", "--images", "gnu-grep,busybox-grep",
              "--platform", "linux/amd64,linux/arm64,linux/arm/v7", "--repeat", "1", "--json", str(report))
    assert out.returncode == 0, out.stderr
    rows = json.loads(report.read_text())["rows"]
    assert [(r["variant"], r["platform"], r["emulated"]) for r in rows] == [
        ("local", "amd64", False),
        ("gnu-grep", "amd64", False), ("busybox-grep", "amd64", False),
        ("gnu-grep", "arm64", True), ("busybox-grep", "arm64", True),
        ("gnu-grep", "armv7", True), ("busybox-grep", "armv7", True)]
    assert len({r["hits"] for r in rows}) == 1 and rows[0]["hits"] > 0
    assert rows[3]["image"] == "workbench/gnu-grep:1-arm64" and rows[6]["image"] == "workbench/busybox-grep:1-armv7"
    assert "arm64 (emulated)" in out.stdout and "armv7 (emulated)" in out.stdout


@pytest.mark.parametrize("arch", ["amd64", *ARCHES])
def test_busybox_bootstrap_makes_an_image_of_that_architecture(docker_client, arm_images, arch):
    from workbench.containers.bootstrap import bootstrap_busybox
    from workbench.containers.build import image_arch

    tag = f"workbench-test/busybox:{arch}"
    bootstrap_busybox(docker_client, tag, arch=arch, log=lambda _: None)
    try:
        assert image_arch(docker_client.images.get(tag).attrs) == arch
        out = run_in(docker_client, tag, ["sh", "-c", "uname -m; printf 'CCO\\nCCN\\n' | grep -c N; id -u nobody"])
        assert out.split() == [{"amd64": "x86_64", **MACHINE}[arch], "1", "65534"]
    finally:
        docker_client.images.remove(tag, force=True)
