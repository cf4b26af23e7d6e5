"""Run a tool as a subprocess (argv only, never a shell), and kill those still running on interrupt."""

from __future__ import annotations

import subprocess
import threading

_live: set[subprocess.Popen[bytes]] = set()
_lock = threading.Lock()


def run_command(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` to completion, capturing stdout and stderr."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    with _lock:
        _live.add(proc)
    try:
        out, err = proc.communicate()
    finally:
        with _lock:
            _live.discard(proc)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def kill_running() -> None:
    """Kill every subprocess started by ``run_command`` that is still running."""
    with _lock:
        procs = list(_live)
    for proc in procs:
        try:
            proc.kill()
        except OSError:
            pass
