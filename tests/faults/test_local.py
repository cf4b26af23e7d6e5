"""Faults on this machine: grep processes and pool worker processes killed mid-run, timeouts, keep-going.

Each randomized trial kills real processes at a seeded random moment; the run must give exactly the
fault-free result (every shard once) and leave nothing running.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import psutil
import pytest

from tests.faults.conftest import (
    SLOW_PATTERN,
    TRIALS,
    Killer,
    anywhere,
    descendants,
    is_dask_worker,
    named,
    run_while_killing,
    sorted_lines,
    trial_rngs,
    wait_until,
)
from tests.helpers import gnu_grep, shard_files
from workbench.errors import JobError, PartialResult
from workbench.jobs.grep import GrepJob
from workbench.jobs.substructure import SubstructureJob

pytestmark = pytest.mark.faults

WB = [sys.executable, "-m", "workbench"]


def timed(run) -> tuple[list, float]:
    start = time.perf_counter()
    results = list(run)
    return results, time.perf_counter() - start


def test_killed_grep_processes_are_retried(faults_dataset):
    ds, job = faults_dataset, GrepJob(SLOW_PATTERN)
    expected = gnu_grep(shard_files(ds.directory), "-e", SLOW_PATTERN)
    _, seconds = timed(ds.run(job, workers=2))
    retries = 0
    for trial, rng in trial_rngs("local-grep"):
        killer = Killer(rng, lambda: descendants(named("grep")), psutil.Process.kill, window=(0.05, 0.8 * seconds),
                        kills=rng.randint(1, 2))
        run = run_while_killing(killer, ds, job, expected, trial, workers=2)
        assert run.stats.retries <= len(killer.killed)  # one failed attempt per killed grep
        retries += run.stats.retries
        assert not descendants(named("grep"))
    assert retries >= TRIALS // 2  # the kills really hit running shards


@pytest.fixture(scope="module")
def faults_indexed(faults_dataset, tmp_path_factory):
    from tests.chem.conftest import indexed_copy

    return indexed_copy(faults_dataset.directory, tmp_path_factory.mktemp("faults-indexed") / "ds")


@pytest.mark.parametrize("source, query", [("text", "c1ccccc1N"), ("index", "[$(*~*~*~*~*~*~*~*~*~*~*)]")])
def test_killed_pool_worker_processes_are_retried(request, source, query):
    """RDKit jobs run on the local process cluster: a worker process killed mid-shard (its nanny starts a
    new one) costs that shard an attempt, run again on a live worker — parsing SMILES text, or reading
    memory-mapped index files (a query the screen keeps most molecules for, so shards take a while)."""
    from tests.chem.conftest import read_records, substructure_truth

    ds = request.getfixturevalue("faults_dataset" if source == "text" else "faults_indexed")
    assert ds.info()["index"] == ("complete" if source == "index" else "none")
    job = SubstructureJob(query=query)
    list(ds.run(job, workers=2))  # the pool is up: time the run alone
    results, seconds = timed(ds.run(job, workers=2))
    expected = sorted_lines(results)
    truth = substructure_truth(read_records(ds.directory), query)
    assert expected == sorted(f"{c}\t{s}".encode() for c, s in truth)
    workers = lambda: descendants(is_dask_worker)  # noqa: E731
    retries = 0
    from workbench.backends import get_backend

    before: list = []
    for trial, rng in trial_rngs(f"local-processes-{source}"):
        get_backend("local", workers=2).client()  # the pool is whole again (a killed worker's nanny restarts it)
        killer = Killer(rng, workers, psutil.Process.kill, window=(0.05, 0.7 * seconds))
        run = run_while_killing(killer, ds, job, expected, trial, workers=2)
        # no retry without a fault: in this run, or a worker killed after the last shard of the one before
        assert run.stats.retries == 0 or killer.killed or before, f"trial {trial}"
        before = killer.killed
        retries += run.stats.retries
    assert retries >= TRIALS // 2
    from workbench.backends import close_all

    close_all()
    assert not workers()


def pool_interpreters() -> list[psutil.Process]:
    """This process's `dask spec` interpreters (children only: a forked worker has the same command line)."""
    return descendants(lambda proc: "dask spec" in " ".join(proc.cmdline()), recursive=False)


def test_killed_nanny_interpreter_is_started_again_and_its_shards_retried(faults_indexed):
    """The pool's one `dask spec` interpreter (every Nanny) killed mid-run: its worker processes exit
    with it, it is started again, and the run retries the shards they were running: exact results,
    each shard once, and the pool whole (two forked workers) afterwards."""
    from tests.chem.conftest import read_records, substructure_truth
    from workbench.backends import close_all, get_backend

    query = "[$(*~*~*~*~*~*~*~*~*~*~*)]"
    job = SubstructureJob(query=query)
    close_all()  # this test's pool is the only one: other tests' pools have interpreters of their own
    list(faults_indexed.run(job, workers=2))  # the pool is up: time the run alone
    results, seconds = timed(faults_indexed.run(job, workers=2))
    expected = sorted_lines(results)
    assert expected == sorted(f"{c}\t{s}".encode() for c, s in substructure_truth(read_records(faults_indexed.directory), query))

    def whole() -> bool:
        """One live interpreter, and two workers forked by it (not the killed one's, still listed)."""
        live = pool_interpreters()
        try:
            pids = get_backend("local", workers=2).client().run(os.getpid)
            return len(live) == 1 and len(pids) == 2 and all(psutil.Process(p).ppid() == live[0].pid
                                                              for p in pids.values())
        except Exception:  # a listed worker already gone: not whole yet
            return False

    retries = 0
    for trial, rng in trial_rngs("local-nanny-interpreter", trials=3):
        # whole again: the interpreter was restarted (a kill as the run ended is restarted after it)
        assert wait_until(whole, timeout=60), f"trial {trial}: the pool is not whole again"
        killer = Killer(rng, pool_interpreters, psutil.Process.kill, window=(0.1, 0.6 * seconds))
        run = run_while_killing(killer, faults_indexed, job, expected, trial, workers=2)
        assert killer.killed, f"trial {trial}"
        retries += run.stats.retries
    assert retries >= 1
    assert wait_until(whole, timeout=60)
    client = get_backend("local", workers=2).client()
    assert all(is_dask_worker(psutil.Process(pid)) for pid in client.run(lambda: __import__("os").getpid()).values())
    close_all()
    assert not pool_interpreters() and not descendants(is_dask_worker)


@pytest.mark.timeout(240)
def test_an_interpreter_that_cannot_start_again_fails_the_run_instead_of_waiting(faults_indexed, monkeypatch):
    """The pool's interpreter killed mid-run, and every one started after it failing (a preload
    module that does not exist, read by new interpreters only): the shards it ran are retried, wait
    ``WORKBENCH_POOL_START_TIMEOUT`` with no worker, and the run ends with a ``JobError`` naming a
    shard and why, instead of waiting for ever; closing the pool leaves nothing running."""
    from workbench.backends import close_all

    close_all()
    monkeypatch.setenv("WORKBENCH_POOL_START_TIMEOUT", "5")  # read when the pool starts
    job = SubstructureJob(query="[$(*~*~*~*~*~*~*~*~*~*~*)]")
    list(faults_indexed.run(job, workers=2))  # the pool is up, with the 5 s timeout

    results = 0
    with pytest.raises(JobError, match=r"shard \S+ failed: no worker process ran for 5 s") as failure:
        for _ in faults_indexed.run(job, workers=2):
            if not results:  # shards still to run: break the interpreters to come, kill this one
                monkeypatch.setenv("DASK_DISTRIBUTED__WORKER__PRELOAD", '["workbench_no_such_module"]')
                killed = pool_interpreters()
                assert len(killed) == 1
                killed[0].kill()
                started = time.monotonic()
            results += 1
    assert results < len(faults_indexed.manifest.shards), "the run ended before the kill took effect"
    assert 5 <= time.monotonic() - started < 120, failure.value
    close_all()
    assert wait_until(lambda: not pool_interpreters() and not descendants(is_dask_worker), timeout=30)


def test_without_retries_a_killed_grep_fails_the_run_naming_its_shard(faults_dataset):
    import random

    with Killer(random.Random(1), lambda: descendants(named("grep")), psutil.Process.kill, window=(0.05, 0.2)):
        with pytest.raises(JobError, match=r"shard shard-\d+ failed: grep was killed by SIGKILL"):
            list(faults_dataset.run(GrepJob(SLOW_PATTERN), workers=2, retries=0))
    assert not descendants(named("grep"))


def test_shard_timeout_kills_the_process_tree_and_retries(faults_dataset, tmp_path):
    """Each shard's first attempt hangs in a grandchild (`sleep` under `sh`): the timeout kills the whole
    tree; the second attempt finishes. Every shard's output arrives once."""
    marks = tmp_path / "marks"
    marks.mkdir()
    script = f'm={marks}/$(basename "$0"); if [ ! -e "$m" ]; then touch "$m"; sleep 59.7; fi; wc -l < "$0"'
    stats = tmp_path / "stats.json"
    proc = subprocess.run([*WB, "run", "-d", str(faults_dataset.directory), "--shard-timeout", "0.5",
                           "--stats-json", str(stats), "--", "sh", "-c", script, "{shard}"],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert sorted(int(n) for n in proc.stdout.split()) == sorted(s.records for s in faults_dataset.manifest.shards)
    import json

    report = json.loads(stats.read_text())
    assert report["retries"] == report["shards_total"] == len(faults_dataset.manifest.shards)
    assert {s["attempts"] for s in report["shards"]} == {2}
    assert not anywhere("sleep", "59.7")  # the grandchildren too (reparented, they would not be ours)


def test_shard_timeout_keep_going_lists_every_shard_that_timed_out(faults_dataset, tmp_path):
    ds = faults_dataset
    proc = subprocess.run([*WB, "grep", SLOW_PATTERN, "-d", str(ds.directory), "--shard-timeout", "0.001",
                           "--retries", "1", "--keep-going", "-o", str(tmp_path / "hits.tsv")],
                          capture_output=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.decode().splitlines()
    failed = [line for line in lines if line.startswith("error: shard ")]
    assert len(failed) == len(ds.manifest.shards)
    assert all("timed out after 0.001 s (killed) (after 2 attempts)" in line for line in failed)
    assert lines[-1].startswith(f"error: {len(ds.manifest.shards)} of {len(ds.manifest.shards)} shards failed")
    assert not (tmp_path / "hits.tsv").exists() and not (tmp_path / "hits.tsv.partial").exists()
    assert not descendants(named("grep"))


def test_timeout_interrupts_python_work_on_the_process_pool(faults_dataset):
    """An RDKit task past its timeout is interrupted inside its worker process, which lives on."""
    workers = lambda: {p.pid for p in descendants(is_dask_worker)}  # noqa: E731
    job = SubstructureJob(query="c1ccccc1N")
    list(faults_dataset.run(job, workers=2))  # the pool is up
    before = workers()
    run = faults_dataset.run(job, workers=2, shard_timeout=0.001, retries=0, keep_going=True)
    assert list(run) == []
    assert {f.shard for f in run.failed} == {s.name for s in faults_dataset.manifest.shards}
    assert all(f.error == "timed out after 0.001 s (killed)" for f in run.failed)
    assert workers() == before


def failing_grep(marks: Path) -> list[str]:
    """`grep -F C(=O)N` on a shard as a command job, failing for good (exit 3) on shards marked in ``marks``."""
    script = (f'if [ -e "{marks}/$(basename "$0")" ]; then echo "shard marked to fail" >&2; exit 3; fi; '
              'grep -F -e "C(=O)N" -- "$0"; [ $? -le 1 ]')
    return ["sh", "-c", script, "{shard}"]


@pytest.fixture
def marked(faults_dataset, tmp_path):
    """A command whose shard-00002 fails for good (every time), and that shard."""
    marks = tmp_path / "marks"
    marks.mkdir()
    victim = faults_dataset.manifest.shards[2]
    (marks / Path(victim.path).name).touch()
    return failing_grep(marks), victim


def test_keep_going_emits_the_other_shards_and_lists_the_failed_one(faults_dataset, marked, tmp_path):
    (command, victim), ds = marked, faults_dataset
    args = [*WB, "run", "-d", str(ds.directory)]
    joblog = tmp_path / "joblog.tsv"
    proc = subprocess.run([*args, "--keep-going", "--joblog", str(joblog), "--", *command],
                          capture_output=True, timeout=120)
    assert proc.returncode == 2
    others = [ds.directory / s.path for s in ds.manifest.shards if s.name != victim.name]
    assert sorted(proc.stdout.splitlines()) == gnu_grep(others, "-F", "-e", "C(=O)N")
    assert proc.stderr.decode().splitlines() == [f"error: shard {victim.name} failed: sh exited 3: shard marked to fail",
                                                 f"error: 1 of {len(ds.manifest.shards)} shards failed"]
    header, *rows = [line.split("\t") for line in joblog.read_text().splitlines()]
    assert header == ["shard", "node", "worker", "start", "seconds", "attempts", "outcome", "hits", "error"]
    assert sorted(r[0] for r in rows) == sorted(s.name for s in ds.manifest.shards)
    [failed] = [r for r in rows if r[6] == "failed"]
    assert failed[0] == victim.name and failed[5] == "1" and failed[8] == "sh exited 3: shard marked to fail"
    assert {r[6] for r in rows if r is not failed} == {"done"} and all(float(r[3]) > 0 for r in rows if r is not failed)
    stopped = subprocess.run([*args, "--", *command], capture_output=True, timeout=120)  # no --keep-going: it stops
    assert stopped.returncode == 2
    assert stopped.stderr.decode() == f"error: shard {victim.name} failed: sh exited 3: shard marked to fail\n"


def test_keep_going_api_tells_which_shards_failed(faults_dataset, marked):
    from workbench.jobs.command import CommandJob

    (command, victim), ds = marked, faults_dataset
    job = CommandJob(argv=command)
    run = ds.run(job, keep_going=True)
    results = list(run)
    assert sorted(r.shard for r in results) == sorted(s.name for s in ds.manifest.shards if s.name != victim.name)
    [failure] = run.failed
    assert (failure.shard, failure.attempts, failure.error) == (victim.name, 1, "sh exited 3: shard marked to fail")
    assert run.stats.to_dict()["failed"] == [failure.stats()]
    with pytest.warns(PartialResult, match=victim.name):
        table = ds.table(job, keep_going=True)
    others = [ds.directory / s.path for s in ds.manifest.shards if s.name != victim.name]
    assert table.num_rows == len(gnu_grep(others, "-F", "-e", "C(=O)N"))
    assert victim.name.encode() in table.schema.metadata[b"workbench.failed"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(JobError, match=victim.name):
            ds.table(job)


@pytest.mark.parametrize("args,message", [
    (["grep", "-E", "C(", "--retries", "5"], "error: invalid pattern 'C('"),
    (["substructure", "[C", "--retries", "5"], "error: invalid SMARTS"),
    (["grep", "C", "--engine", "nosuch"], "error: unknown grep engine 'nosuch'"),
    (["run", "--", "no-such-tool-here", "{shard}"], "error: command 'no-such-tool-here' is not installed"),
])
def test_request_errors_are_not_retried_and_fail_before_any_shard_runs(faults_dataset, tmp_path, args, message):
    out = tmp_path / "out.tsv"
    start = time.perf_counter()
    proc = subprocess.run([*WB, args[0], "-d", str(faults_dataset.directory), "-o", str(out), *args[1:]],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr
    assert not out.exists() and not (tmp_path / "out.tsv.partial").exists()
    assert time.perf_counter() - start < 30


def test_a_deadline_passing_as_a_process_starts_never_leaves_it_running():
    """With interrupts (as on worker processes), a deadline that passes while ``run_command`` starts its
    process must still kill it: the interrupt is not raised there, its killer is (thresholds swept
    across the start-up window)."""
    from workbench.errors import ShardTimeout
    from workbench.jobs.proc import run_command
    from workbench.util.scope import run_scoped

    leaked = lambda: descendants(lambda p: p.name() == "sleep" and "59.3" in p.cmdline())  # noqa: E731
    for i in range(150):
        with pytest.raises(ShardTimeout):
            run_scoped(run_command, ["sleep", "59.3"], 0.0001 * (i % 30 + 1), interrupt=True)
        assert not leaked(), f"attempt {i}"
