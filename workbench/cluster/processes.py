"""Stopping local processes we started: TERM, a bounded wait, then KILL (psutil)."""

from __future__ import annotations

import os
import signal

import psutil


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone; our own exited child is reaped)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def terminate(pids: list[int], *, group: bool = False, wait: float = 10.0) -> None:
    """TERM each pid (``group``: every process of its process group), wait up to ``wait`` s, then KILL
    what is left."""
    procs = _members(pids) if group else _existing(pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for proc in procs:
            try:
                proc.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        _, procs = psutil.wait_procs(procs, timeout=wait)
        procs = [p for p in procs if pid_alive(p.pid)]
        if not procs:
            return


def _existing(pids: list[int]) -> list[psutil.Process]:
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    return procs


def _members(groups: list[int]) -> list[psutil.Process]:
    """Every live process whose process group is one of ``groups``."""
    wanted, procs = set(groups), []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) in wanted:
                procs.append(proc)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return procs
