"""Faults on the docker backend: worker containers killed (`docker kill`) mid-run, shard timeouts."""

from __future__ import annotations

import time

import pytest

from tests.docker.conftest import (  # noqa: F401  (fixtures)
    docker_client,
    existing_containers,
    wait_for_no_containers,
    worker_images,
)
from tests.faults.conftest import SLOW_PATTERN, TRIALS, Killer, own_containers, run_while_killing, sorted_lines, trial_rngs
from tests.helpers import gnu_grep, shard_files
from workbench.backends import close_all
from workbench.jobs.grep import GrepJob

pytestmark = [pytest.mark.faults, pytest.mark.docker]


@pytest.fixture(autouse=True)
def nothing_left(docker_client, existing_containers):  # noqa: F811
    """Once the backend is closed (as at exit), no worker container of these tests is left."""
    yield
    close_all()
    assert wait_for_no_containers(docker_client, ignore=existing_containers) == []


def kill_container(container) -> None:
    container.kill()


def test_killed_containers_are_retried(faults_dataset, worker_images, docker_client,  # noqa: F811
                                       existing_containers):  # noqa: F811
    ds, job = faults_dataset, GrepJob(SLOW_PATTERN)
    expected = gnu_grep(shard_files(ds.directory), "-e", SLOW_PATTERN)
    start = time.perf_counter()
    assert sorted_lines(ds.run(job, backend="docker", workers=2)) == expected
    seconds = time.perf_counter() - start
    retries = kills = 0
    for trial, rng in trial_rngs("docker"):
        killer = Killer(rng, lambda: own_containers(docker_client), kill_container,
                        window=(0.05, 0.8 * seconds), kills=rng.randint(1, 2))
        run = run_while_killing(killer, ds, job, expected, trial, backend="docker", workers=2)
        retries, kills = retries + run.stats.retries, kills + len(killer.killed)
        # at most one failed attempt per killed container, though maybe in the next run: one killed
        # after its last shard waits in the (long-lived) pool, and is found dead when next used
        assert retries <= kills, f"trial {trial}"
    assert retries >= TRIALS // 2


def test_killed_python_worker_containers_are_retried(faults_dataset, worker_images, docker_client,  # noqa: F811
                                                     existing_containers):  # noqa: F811
    from workbench.jobs.substructure import SubstructureJob

    ds, job = faults_dataset, SubstructureJob(query="c1ccccc1N")
    expected = sorted_lines(ds.run(job))
    for trial, rng in trial_rngs("docker-rdkit", max(TRIALS // 4, 1)):
        killer = Killer(rng, lambda: own_containers(docker_client), kill_container, window=(0.5, 2.0))
        run_while_killing(killer, ds, job, expected, trial, backend="docker", workers=2)


def test_shard_timeout_removes_the_container(faults_dataset, worker_images, docker_client,  # noqa: F811
                                             existing_containers):  # noqa: F811
    run = faults_dataset.run(GrepJob(SLOW_PATTERN), backend="docker", workers=2, shard_timeout=0.002, retries=0,
                             keep_going=True)
    assert list(run) == []
    assert {f.shard for f in run.failed} == {s.name for s in faults_dataset.manifest.shards}
    assert all(f.error == "timed out after 0.002 s (killed)" for f in run.failed)
    assert wait_for_no_containers(docker_client, ignore=existing_containers) == []  # each one removed at once
