"""Dask distributed: shard tasks on an existing scheduler (``--scheduler``; ``tls://`` with mutual TLS).

``stream_futures`` is the one way shard tasks run on processes, shared with the local backend's
process cluster: one future per shard attempt, yielded as they complete, under the run's
``RetryPolicy`` (``workbench.backends.retry``): a failed attempt — a lost worker included — is
submitted again, by default on the shard's other allowed workers (``replace`` may choose anew); a
final failure is reported by shard name and cancels the rest. A cluster file's cluster
(``--cluster``) is this backend with tasks restricted to the workers of nodes holding each shard
(``workbench.cluster.backends``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.backends.base import Backend
from workbench.backends.retry import Attempts, Failed, RetryPolicy, ShardFailure, Tries, attempt_shard, lost_worker, no_worker
from workbench.errors import BackendError, TransientError, WorkbenchError
from workbench.jobs.base import Job, ShardResult, ShardTask

if TYPE_CHECKING:
    from distributed import Client, Future, Security

    from workbench.storage.manifest import Manifest

Placed = tuple[ShardTask, "list[str] | None"]
#: Where the next attempt of a shard runs, given its attempts so far (it may raise ``WorkbenchError``).
Replace = Callable[[Tries, "list[str] | None"], Placed]


def stream_futures(client: "Client", job: Job, placed: Sequence[Placed], policy: RetryPolicy = RetryPolicy(),
                   replace: Replace | None = None) -> Iterator[ShardResult | ShardFailure]:
    """Submit one task per shard (optionally restricted to workers) and yield results as they finish."""
    from distributed import as_completed

    attempts = Attempts(policy, [task for task, _ in placed])
    futures: dict["Future", tuple[Tries, list[str] | None]] = {}

    def submit(task: ShardTask, workers: list[str] | None) -> "Future":
        tries = attempts.start(task)
        future = client.submit(attempt_shard, job, task, policy.shard_timeout, pure=False,
                               key=f"{job.name}-{task.shard.name}-{_token()}", workers=workers,
                               allow_other_workers=False)
        futures[future] = (tries, workers)
        return future

    pending = as_completed([submit(task, workers) for task, workers in placed], loop=client.loop)
    try:
        for future in pending:
            tries, workers = futures.pop(future)
            outcome = _outcome(future)
            future.release()
            settled = attempts.settle(tries, outcome)
            if settled is None:
                try:
                    task, workers = (replace or _elsewhere)(tries, workers)
                except WorkbenchError as exc:
                    settled = attempts.give_up(tries, exc)
                else:
                    pending.add(submit(task, workers))
                    continue
            yield settled
    finally:
        client.cancel(list(futures))


def _outcome(future: "Future") -> ShardResult | Failed:
    """A finished future's result, or its failure (a lost worker or a cancelled task is transient;
    no worker at all for the scheduler's ``no-workers-timeout`` is final)."""
    from concurrent.futures import CancelledError

    try:  # not only "error": a finished task whose worker died is computed again ("lost"), and may fail then
        if future.status != "cancelled":
            return future.result()
    except CancelledError:  # (Dask's FutureCancelledError)
        pass
    except Exception as exc:
        return lost_worker(exc) or no_worker(exc) or Failed(exc)
    return Failed(TransientError("the task was cancelled (its worker was lost?)"))


def _elsewhere(tries: Tries, workers: list[str] | None) -> Placed:
    """By default the next attempt runs on the shard's allowed workers but those that failed it (if any remain)."""
    if workers is None:
        return tries.task, None
    others = [w for w in workers if w not in tries.failed_workers]
    return tries.task, others or workers


def _token() -> str:
    import uuid

    return uuid.uuid4().hex[:8]


def _serves_dashboard(dask_scheduler: Any = None) -> bool:
    """Runs on the scheduler: whether its HTTP server carries the dashboard's (bokeh) application."""
    return bool(getattr(getattr(dask_scheduler, "http_application", None), "applications", None))


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

    def replace(self, root: Path, manifest: "Manifest", tries: Tries, workers: list[str] | None) -> Placed:
        """Where a shard's next attempt runs (default: its allowed workers but those that failed it)."""
        return _elsewhere(tries, workers)

    def map_shards(self, job: Job, root: Path, manifest: "Manifest",
                   policy: RetryPolicy = RetryPolicy()) -> Iterator[ShardResult | ShardFailure]:
        yield from stream_futures(self.client, job, self.placed_tasks(root, manifest), policy,
                                  lambda tries, workers: self.replace(root, manifest, tries, workers))

    def describe(self) -> str:
        return f"dask:{self.address}"

    def dashboard_link(self) -> str | None:
        """The link the scheduler advertises for its dashboard (None when it serves none: no bokeh there)."""
        if not hasattr(self, "_dashboard"):
            self._dashboard: str | None = None
            try:
                if self.client.run_on_scheduler(_serves_dashboard):
                    self._dashboard = self.client.dashboard_link
            except Exception:  # an old or locked-down scheduler: no link rather than a failed run
                pass
        return self._dashboard

    def close(self) -> None:
        self.client.close()

    def info(self) -> dict[str, Any]:
        return self.client.scheduler_info()
