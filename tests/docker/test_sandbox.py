"""Worker containers are sandboxed, and none is left after a dead worker, an early stop or Ctrl-C
(after success and a failing shard: the conformance tests in ``test_backend`` check it after each test)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.docker.conftest import SLOW_PATTERN, our_containers, running_containers, wait_for_no_containers
from workbench.errors import JobError
from workbench.jobs.grep import GrepJob

pytestmark = pytest.mark.docker


def test_running_worker_is_sandboxed(slow_dataset, worker_images, docker_client, existing_containers):
    from workbench.backends.docker import DockerBackend

    with DockerBackend(workers=2) as backend:
        results = backend.map_shards(GrepJob(SLOW_PATTERN), slow_dataset.directory, slow_dataset.manifest)
        next(results)  # workers are up and serving shards
        running = running_containers(docker_client, existing_containers)
        assert running
        for container in running:
            container.reload()
            host, config = container.attrs["HostConfig"], container.attrs["Config"]
            assert container.status == "running"
            assert host["NetworkMode"] == "none"
            assert config["User"] == "65534:65534"
            assert host["NanoCpus"] == 1_000_000_000
            assert 0 < host["Memory"] <= 512 * 2**20
            assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
            assert host["SecurityOpt"] == ["no-new-privileges"]
            assert host["Privileged"] is False and host["ReadonlyRootfs"] is True
            mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
            assert set(mounts) == {"/data", "/out"}  # the dataset, and (engine on this host) the output files
            data, out = mounts["/data"], mounts["/out"]
            assert (data["RW"], Path(data["Source"])) == (False, slow_dataset.directory)
            assert out["RW"] is True and Path(out["Source"]).parent == Path(tempfile.gettempdir())
            assert Path(out["Source"]).stat().st_uid == 65534 and Path(out["Source"]).name.startswith("workbench-out-")
            probe = container.exec_run(["sh", "-c", "id -u; touch /data/x 2>&1; touch /x 2>&1; cat /proc/net/dev | wc -l"])
            uid, touch, root, netdev = probe.output.decode().splitlines()
            assert uid == "65534" and "Read-only file system" in touch and "Read-only file system" in root
            assert int(netdev) == 3  # header + lo only
        results.close()
    assert wait_for_no_containers(docker_client, ignore=existing_containers) == []


def test_killed_worker_without_retries_fails_the_run_and_leaves_nothing(slow_dataset, worker_images, docker_client,
                                                                        existing_containers):
    """With --retries 0 (retried runs: tests/faults)."""
    run = slow_dataset.run(GrepJob(SLOW_PATTERN), backend="docker", workers=2, retries=0)
    results = iter(run)
    next(results)
    running_containers(docker_client, existing_containers)[0].kill()
    with pytest.raises(JobError, match="exited unexpectedly"):
        for _ in results:
            pass
    assert wait_for_no_containers(docker_client, ignore=existing_containers) == []


def interrupted_cli_run(dataset, client, sig: int, existing: frozenset[str]) -> tuple[int, bytes]:
    """Start `workbench grep --backend docker`, send ``sig`` once both workers run; (exit status, stderr)."""
    # as from a terminal: SIGINT at its default, whatever this process inherited (an ignored SIGINT is
    # inherited across exec, and Python then installs no KeyboardInterrupt handler)
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "grep", SLOW_PATTERN, "-d", str(dataset.directory),
                             "--backend", "docker", "--workers", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while len(running_containers(client, existing)) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert len(running_containers(client, existing)) == 2, "the run did not start its two workers"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, err


def test_ctrl_c_removes_every_container(slow_dataset, worker_images, docker_client, existing_containers):
    status, err = interrupted_cli_run(slow_dataset, docker_client, signal.SIGINT, existing_containers)
    assert status == 130, err
    assert b"interrupted" in err
    assert wait_for_no_containers(docker_client, ignore=existing_containers) == []


def test_killed_client_leaves_no_container(slow_dataset, worker_images, docker_client, existing_containers):
    """SIGKILL runs no cleanup: the workers' stdin closes with the client, their loop ends, auto-remove."""
    status, _ = interrupted_cli_run(slow_dataset, docker_client, signal.SIGKILL, existing_containers)
    assert status == -signal.SIGKILL
    assert wait_for_no_containers(docker_client, timeout=60, ignore=existing_containers) == []


def test_containers_a_killed_client_never_started_are_orphans_to_remove(docker_client, worker_images,
                                                                        existing_containers):
    """Killed between create and start, a client leaves a "created" container that auto-remove never
    deletes; each new pool removes those older than any start could take (by the engine's clock)."""
    from workbench.containers.workers import RUN_LABEL, remove_orphans

    orphan = docker_client.containers.create(worker_images.get("gnu-grep").tag, ["true"],
                                             labels={RUN_LABEL: "killed-run"})
    try:
        assert remove_orphans(docker_client) == []  # just created: it may be starting
        assert [c.id for c in our_containers(docker_client, existing_containers)] == [orphan.id]
        time.sleep(1.1)
        assert remove_orphans(docker_client, older_than=1) == [orphan.name]
    finally:
        if our_containers(docker_client, existing_containers):
            orphan.remove(force=True)
    assert our_containers(docker_client, existing_containers) == []


def test_output_directories_of_dead_clients_are_removed_by_the_next_pool(tmp_path):
    """A killed client leaves its pool's ``/out`` directory (its last shards' output); the next
    pool on this host deletes those whose process is gone, never a live one's."""
    from workbench.containers.pool import remove_dead_output_dirs

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead, live = tmp_path / f"workbench-out-{gone.stdout.strip()}-x1", tmp_path / f"workbench-out-{os.getpid()}-x2"
    for directory in (dead, live):
        directory.mkdir()
        (directory / "workbench-abc").write_bytes(b"a shard's output")
    other = tmp_path / "workbench-out-notapid"
    other.mkdir()
    assert remove_dead_output_dirs(str(tmp_path)) == [dead.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name])


def test_stopping_early_removes_containers(nci_dataset, worker_images, docker_client, existing_containers):
    results = iter(nci_dataset.run(GrepJob("C"), backend="docker", workers=2))
    next(results)
    results.close()
    assert wait_for_no_containers(docker_client, ignore=existing_containers) == []
