"""Task scopes: what one shard attempt started, so that a timeout kills exactly that attempt's work.

``run_scoped`` runs an attempt on the current thread inside a ``TaskScope``. Code that starts
something killable on that thread — a subprocess (``workbench.jobs.proc``), a worker container
(``workbench.containers.pool``) — registers how to kill it with ``on_kill``. When the deadline
passes, the scope runs every registered killer (process trees are killed with psutil), optionally
interrupts Python code running on the thread, and the attempt fails with ``ShardTimeout``.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from workbench.errors import ShardTimeout

T = TypeVar("T")
A = TypeVar("A")

_local = threading.local()
#: Seconds an interrupted attempt may take to stop before a worker process kills itself.
HARD_KILL_GRACE = 10.0


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (children first found, then killed at once)."""
    import psutil

    try:
        parent = psutil.Process(pid)
        procs = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


def current() -> "TaskScope | None":
    """The scope of the attempt running on this thread, if any."""
    return getattr(_local, "scope", None)


def on_kill(kill: Callable[[], None]) -> Callable[[], None]:
    """Register ``kill`` with the current scope (if any); returns a function that unregisters it."""
    scope = current()
    return scope.on_kill(kill) if scope is not None else _nothing


def _nothing() -> None:
    pass


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Code whose registered killers stop it (a subprocess started and waited for): past the deadline
    the scope runs the killers but raises no interrupt inside it, so nothing it starts can be lost
    between starting and registering. Entered past the deadline, it raises ``ShardTimeout`` at once."""
    scope = current()
    if scope is None or not scope.interrupt:
        yield
        return
    with scope._lock:
        if scope.timed_out:
            _raise_in(scope._thread, None)  # an interrupt on its way: this raise replaces it
            raise ShardTimeout(f"timed out after {scope.timeout:g} s (killed)")
        scope._shielded += 1
    try:
        yield
    finally:
        with scope._lock:
            scope._shielded -= 1


@contextmanager
def clock_stopped() -> Iterator[None]:
    """Waiting that does not count against the current attempt's timeout (for a free worker slot):
    its clock starts again, in full, afterwards."""
    scope = current()
    if scope is None:
        yield
        return
    scope._timer.cancel()
    try:
        yield
    finally:
        scope._timer = threading.Timer(scope.timeout, scope.expire)
        scope._timer.daemon = True
        scope._timer.start()


class TaskScope:
    """One attempt's deadline and killers. ``interrupt``: also raise ``ShardTimeout`` inside Python
    code running on the attempt's thread, and if that does not stop it, kill this (worker) process."""

    def __init__(self, timeout: float, interrupt: bool = False):
        self.timeout, self.interrupt = timeout, interrupt
        self.timed_out = False
        self._killers: dict[int, Callable[[], None]] = {}
        self._lock = threading.Lock()
        self._thread = threading.get_ident()
        self._running = True
        self._shielded = 0  # ``uninterrupted`` sections running now
        self._timer = threading.Timer(timeout, self.expire)
        self._timer.daemon = True

    def on_kill(self, kill: Callable[[], None]) -> Callable[[], None]:
        with self._lock:
            late = self.timed_out
            key = id(kill)
            if not late:
                self._killers[key] = kill
        if late:  # the deadline passed while it was being started
            _quietly(kill)
        return lambda: self._forget(key)

    def _forget(self, key: int) -> None:
        with self._lock:
            self._killers.pop(key, None)

    def expire(self) -> None:
        with self._lock:
            if not self._running:
                return
            self.timed_out = True
            killers = list(self._killers.values())
        for kill in killers:
            _quietly(kill)
        if self.interrupt:
            with self._lock:
                if self._running and not self._shielded:
                    _raise_in(self._thread, ShardTimeout)
            backstop = threading.Timer(HARD_KILL_GRACE, self._hard_kill)
            backstop.daemon = True
            backstop.start()

    def _hard_kill(self) -> None:
        """A task stuck in native code ignores the interrupt: a worker process then ends itself
        (its nanny starts a new one; the client sees a lost worker, a transient failure)."""
        with self._lock:
            stuck = self._running
        if stuck and multiprocessing.parent_process() is not None:
            os.kill(os.getpid(), signal.SIGKILL)

    def start(self) -> None:
        _local.scope = self
        self._timer.start()

    def finish(self) -> None:
        """End the scope (idempotent: an interrupt may land inside a first call, so callers repeat it)."""
        self._timer.cancel()
        with self._lock:
            self._running = False
            if self.timed_out and self.interrupt:
                _raise_in(self._thread, None)  # drop an interrupt not delivered yet
        _local.scope = None


def run_scoped(call: Callable[[A], T], arg: A, timeout: float | None, interrupt: bool = False) -> T:
    """``call(arg)`` on this thread, killed after ``timeout`` seconds (None: no limit) -> ``ShardTimeout``."""
    if not timeout:
        return call(arg)
    scope = TaskScope(timeout, interrupt)
    try:
        scope.start()
        try:
            result = call(arg)
        finally:
            scope.finish()
    except BaseException:
        scope.finish()
        if scope.timed_out:
            raise ShardTimeout(f"timed out after {timeout:g} s (killed)") from None
        raise
    if scope.timed_out:  # it finished as the deadline passed: what it started may have been killed
        raise ShardTimeout(f"timed out after {timeout:g} s (killed)")
    return result


def _raise_in(thread_id: int, exc_type: type[BaseException] | None) -> None:
    """Raise ``exc_type`` in another thread at its next Python instruction (None: cancel that)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exc_type) if exc_type else None)


def _quietly(kill: Callable[[], None]) -> None:
    try:
        kill()
    except Exception:  # the thing is already gone
        pass
