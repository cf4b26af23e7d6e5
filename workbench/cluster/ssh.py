"""SSH to cluster nodes with asyncssh: verified host keys, key authentication only, bounded fan-out."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, AsyncIterator, TypeVar

from workbench.cluster.inventory import Cluster, Node
from workbench.errors import ClusterError, NodeUnreachable

if TYPE_CHECKING:
    import asyncssh

T = TypeVar("T")
R = TypeVar("R")


async def connect(cluster: Cluster, node: Node) -> "asyncssh.SSHClientConnection":
    """Open an SSH connection; any failure becomes ``NodeUnreachable`` with a one-phrase reason."""
    import asyncssh

    if not cluster.known_hosts.is_file():
        raise ClusterError(f"known_hosts file {cluster.known_hosts} does not exist (host keys are always verified)")
    try:
        client_keys = [asyncssh.read_private_key(str(node.key))]
    except (OSError, asyncssh.KeyImportError) as exc:
        raise ClusterError(f"node {node.name!r}: cannot read SSH key {node.key}: {_short(exc)}") from None
    try:
        return await asyncssh.connect(
            node.host, node.port, username=node.user, client_keys=client_keys,
            known_hosts=str(cluster.known_hosts), agent_path=None, config=[], password=None,
            preferred_auth="publickey", connect_timeout=cluster.connect_timeout,
            login_timeout=cluster.connect_timeout, keepalive_interval=30,
        )
    except Exception as exc:
        raise NodeUnreachable(node.name, unreachable_reason(exc, cluster, node)) from None


@asynccontextmanager
async def session(cluster: Cluster, node: Node) -> AsyncIterator["asyncssh.SSHClientConnection"]:
    """``async with session(cluster, node) as conn:`` — connect, and always close."""
    conn = await connect(cluster, node)
    try:
        yield conn
    finally:
        conn.close()
        await conn.wait_closed()


def unreachable_reason(exc: BaseException, cluster: Cluster, node: Node) -> str:
    """Why a connection failed, in words an operator acts on (never key material)."""
    import asyncssh

    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        if _known_host(cluster, node):
            return "host key mismatch (the node's key differs from the one in known_hosts; refused)"
        return "host key unknown (no entry in known_hosts; refused)"
    if isinstance(exc, asyncssh.PermissionDenied):
        return "authentication failed"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return f"timeout after {cluster.connect_timeout:g} s"
    if isinstance(exc, asyncssh.DisconnectError):
        return f"disconnected: {_short(exc)}"
    if isinstance(exc, OSError):
        return exc.strerror.lower() if exc.strerror else _short(exc)
    return _short(exc)


def _known_host(cluster: Cluster, node: Node) -> bool:
    """Whether known_hosts has any entry for the node (then a rejected key is a mismatch)."""
    names = {node.host, f"[{node.host}]:{node.port}"}
    try:
        lines = cluster.known_hosts.read_text().splitlines()
    except OSError:
        return False
    return any(names & set(line.split()[0].split(",")) for line in lines if line.strip() and not line.startswith("#"))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


async def run(conn: "asyncssh.SSHClientConnection", node: str, argv: list[str], *,
              input: str | None = None, check: bool = True) -> str:
    """Run ``argv`` on the node; return stdout. A failure is a ``ClusterError`` naming the node."""
    result = await conn.run(shlex.join(argv), input=input, check=False)
    if check and result.exit_status != 0:
        err = (str(result.stderr or "").strip().splitlines() or [f"exit status {result.exit_status}"])[-1]
        raise ClusterError(f"node {node!r}: `{argv[0]}` failed: {err}")
    return str(result.stdout or "")


async def bounded(items: Iterable[T], fn: Callable[[T], Awaitable[R]], limit: int) -> list[R | BaseException]:
    """``fn`` over every item with at most ``limit`` running at once; results (or exceptions) in order."""
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with gate:
            return await fn(item)

    return list(await asyncio.gather(*(one(i) for i in items), return_exceptions=True))


def run_sync(coro: Awaitable[R]) -> R:
    """``asyncio.run(coro)``, also where this thread's event loop is already running (a Jupyter cell):
    then on a short-lived thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="workbench-ssh") as pool:
        return pool.submit(asyncio.run, coro).result()  # type: ignore[arg-type]


def raise_first(results: list[R | BaseException]) -> list[R]:
    """Re-raise the first exception of a ``bounded`` result list (a ``ClusterError`` stays itself)."""
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results  # type: ignore[return-value]
