"""Job registry: name -> class, imported on first use (like fsspec's registry)."""

from __future__ import annotations

import importlib
from typing import Any

from workbench.jobs.base import Job, ShardOutput, ShardResult, ShardTask, run_shard

JOBS: dict[str, str] = {
    "grep": "workbench.jobs.grep:GrepJob",
    "command": "workbench.jobs.command:CommandJob",
    "substructure": "workbench.jobs.substructure:SubstructureJob",
    "similar": "workbench.jobs.similarity:SimilarityJob",
    "index": "workbench.jobs.indexing:IndexJob",
}


def job_class(name: str) -> type[Job]:
    from workbench.errors import WorkbenchError

    try:
        module, _, attr = JOBS[name].partition(":")
    except KeyError:
        raise WorkbenchError(f"unknown job {name!r} (known: {', '.join(sorted(JOBS))})") from None
    return getattr(importlib.import_module(module), attr)


def job_from_spec(spec: dict[str, Any]) -> Job:
    """Rebuild a job from ``Job.spec()`` (used by the container worker entry point)."""
    spec = dict(spec)
    return job_class(spec.pop("job"))(**spec)


__all__ = ["JOBS", "Job", "ShardOutput", "ShardResult", "ShardTask", "job_class", "job_from_spec", "run_shard"]
