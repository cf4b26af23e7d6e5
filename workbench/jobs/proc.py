"""Run a tool as a subprocess (argv only, never a shell); kill those still running on a stop or timeout.

A subprocess killed by a signal (``kill``, the OOM killer, a shard timeout) raises ``TransientError``:
the shard attempt may succeed when run again. Process trees are killed (psutil), so a command that
starts children of its own leaves nothing behind.
"""

from __future__ import annotations

import signal
import subprocess
import threading

from workbench.errors import TransientError
from workbench.util.scope import kill_tree, on_kill, uninterrupted

_live: set[subprocess.Popen[bytes]] = set()
_lock = threading.Lock()


def run_command(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` to completion, capturing stdout and stderr; killed by a signal -> ``TransientError``.
    A shard timeout kills it through its registered killer, never by interrupting this code between
    starting the process and registering it (which would leave it running)."""
    with uninterrupted():
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env)
        with _lock:
            _live.add(proc)
        forget = on_kill(lambda: _kill(proc))
        try:
            out, err = proc.communicate()
        finally:
            forget()
            with _lock:
                _live.discard(proc)
    if proc.returncode < 0:
        raise TransientError(f"{argv[0]} was killed by {_signal_name(-proc.returncode)}")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def kill_running() -> None:
    """Kill every subprocess started by ``run_command`` that is still running (and its children)."""
    with _lock:
        procs = list(_live)
    for proc in procs:
        _kill(proc)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:  # not reaped yet, so its pid is still its own
        kill_tree(proc.pid)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
