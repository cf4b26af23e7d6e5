"""Faults on a Dask scheduler (`--scheduler`): worker processes and their grep processes killed mid-run."""

from __future__ import annotations

import psutil
import pytest

from tests.backends.test_dask import dask_processes
from tests.faults.conftest import (
    SLOW_PATTERN,
    TRIALS,
    Killer,
    descendants,
    is_dask_worker,
    named,
    run_while_killing,
    sorted_lines,
    trial_rngs,
)
from tests.helpers import gnu_grep, shard_files
from workbench.jobs.grep import GrepJob

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """Two worker processes whose loss the scheduler reports at once (``allowed-failures`` 0, as
    `workbench cluster up` starts its scheduler), so the run's retry policy handles it."""
    with dask_processes(tmp_path_factory.mktemp("dask-faults"),
                        env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}) as address:
        yield address


def worker_tree() -> list[psutil.Process]:
    """The worker processes of the `dask worker` command this module started, and their grep processes."""
    [command] = descendants(lambda p: "worker" in p.cmdline() and any(a.endswith("/dask") for a in p.cmdline()))
    return descendants(lambda p: is_dask_worker(p) or p.name() == "grep", root=command)


def test_killed_dask_workers_and_their_greps_are_retried(faults_dataset, scheduler):
    from distributed import Client

    ds, job = faults_dataset, GrepJob(SLOW_PATTERN)
    options = {"backend": "dask", "scheduler": scheduler}
    expected = gnu_grep(shard_files(ds.directory), "-e", SLOW_PATTERN)
    assert sorted_lines(ds.run(job, **options)) == expected
    retries = 0
    with Client(scheduler, timeout=30) as client:
        before: list = []
        for trial, rng in trial_rngs("dask-scheduler"):
            client.wait_for_workers(2, timeout=60)  # a killed worker's nanny has started its successor
            killer = Killer(rng, worker_tree, psutil.Process.kill, window=(0.05, 1.0))
            run = run_while_killing(killer, ds, job, expected, trial, **options)
            # no retry without a fault: in this run, or a worker killed after the last shard of the one before
            assert run.stats.retries == 0 or killer.killed or before, f"trial {trial}"
            before = killer.killed
            retries += run.stats.retries
    assert retries >= TRIALS // 2


def test_shard_timeout_on_dask_workers_names_the_worker(faults_dataset, scheduler):
    run = faults_dataset.run(GrepJob(SLOW_PATTERN), backend="dask", scheduler=scheduler, shard_timeout=0.001,
                             retries=1, keep_going=True)
    assert list(run) == []
    assert len(run.failed) == len(faults_dataset.manifest.shards)
    for failure in run.failed:
        assert failure.error == "timed out after 0.001 s (killed) (after 2 attempts)"
        assert failure.node == "dask-test-node" and failure.worker
    assert not descendants(named("grep"))
