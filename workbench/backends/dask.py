"""Dask distributed: shard tasks on an existing scheduler (``--scheduler``; ``tls://`` with mutual TLS).

``stream_futures`` is the one way shard tasks run on processes, shared with the local backend's
process cluster: one future per shard, yielded as they complete; a failure is reported by shard
name and cancels the rest. A cluster file's cluster (``--cluster``) is this backend with tasks
restricted to the workers of nodes holding each shard (``workbench.cluster.backends``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.backends.base import Backend
from workbench.backends.threads import shard_error
from workbench.errors import BackendError, WorkbenchError
from workbench.jobs.base import Job, ShardResult, ShardTask, run_shard

if TYPE_CHECKING:
    from distributed import Client, Security

    from workbench.storage.manifest import Manifest

Placed = tuple[ShardTask, "list[str] | None"]


def stream_futures(client: "Client", job: Job, placed: Sequence[Placed]) -> Iterator[ShardResult]:
    """Submit one task per shard (optionally restricted to workers) and yield results as they finish."""
    from distributed import as_completed

    futures = {}
    for task, workers in placed:
        future = client.submit(run_shard, job, task, pure=False, key=f"{job.name}-{task.shard.name}-{_token()}",
                               workers=workers, allow_other_workers=False)
        futures[future] = task
    try:
        for future in as_completed(list(futures), loop=client.loop):
            if future.status == "error":
                raise shard_error(futures[future].shard.name, future.exception())
            if future.status == "cancelled":
                raise BackendError(f"shard {futures[future].shard.name} was cancelled (a worker was lost?)")
            result = future.result()
            future.release()
            yield result
    finally:
        client.cancel(list(futures))


def _token() -> str:
    import uuid

    return uuid.uuid4().hex[:8]


def connect(address: str, timeout: float = 10, security: "Security | None" = None) -> "Client":
    """A client of the scheduler at ``address``; an unreachable one is a ``BackendError``."""
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - dask[distributed] is a dependency
        raise BackendError("the dask backend needs dask[distributed]: pip install 'dask[distributed]'") from exc
    try:
        return Client(address, timeout=timeout, set_as_default=False, security=security)
    except (OSError, TimeoutError) as exc:
        raise BackendError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    except ValueError as exc:
        raise BackendError(f"invalid Dask scheduler address {address!r}: {exc}") from None


def tls_security(address: str, ca_file: str | None = None, cert: str | None = None,
                 key: str | None = None) -> "Security | None":
    """Mutual TLS for a ``tls://`` scheduler: these certificate files, else Dask's configuration
    (``distributed.comm.tls.ca-file``, ``…client.cert``, ``…client.key``); None for ``tcp://``."""
    from distributed import Security

    given = [x for x in (ca_file, cert, key) if x]
    if given and len(given) != 3:
        raise BackendError("--tls-ca-file, --tls-cert and --tls-key go together (the CA, this client's certificate and key)")
    if given and not address.startswith("tls://"):
        raise BackendError(f"the TLS options need a tls:// scheduler address, not {address!r}")
    if given:
        for path in given:
            if not Path(path).is_file():  # type: ignore[arg-type]
                raise BackendError(f"TLS file {path} does not exist")
        return Security(tls_ca_file=ca_file, tls_client_cert=cert, tls_client_key=key, require_encryption=True)
    if not address.startswith("tls://"):
        return None
    configured = Security(require_encryption=True)
    if not (configured.tls_ca_file and configured.tls_client_cert):
        raise BackendError(f"--scheduler {address} needs --tls-ca-file, --tls-cert and --tls-key (or "
                           "distributed.comm.tls.ca-file and .client.cert/.client.key in Dask's configuration)")
    return configured


class DaskBackend(Backend):
    """Shard tasks on an existing Dask cluster, on any worker (``placed_tasks`` may restrict them)."""

    name = "dask"

    def __init__(self, workers: int | None = None, scheduler: str | None = None, tls_ca_file: str | None = None,
                 tls_cert: str | None = None, tls_key: str | None = None, security: "Security | None" = None):
        if not scheduler:
            raise WorkbenchError("--backend dask needs --scheduler tcp://HOST:PORT or --cluster FILE")
        self.address = scheduler
        self.client = connect(scheduler, security=security or tls_security(scheduler, tls_ca_file, tls_cert, tls_key))
        threads = sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values())
        super().__init__(workers or threads or 1)

    def placed_tasks(self, root: Path, manifest: "Manifest") -> list[Placed]:
        """Each shard task with the workers allowed to run it (None: any)."""
        return [(t, None) for t in self.tasks(root, manifest.shards)]

    def map_shards(self, job: Job, root: Path, manifest: "Manifest") -> Iterator[ShardResult]:
        yield from stream_futures(self.client, job, self.placed_tasks(root, manifest))

    def describe(self) -> str:
        return f"dask:{self.address}"

    def close(self) -> None:
        self.client.close()

    def info(self) -> dict[str, Any]:
        return self.client.scheduler_info()
