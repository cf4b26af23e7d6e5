"""Head-to-head: the docker backend against the local backend, same shards, runs interleaved.

grep: local vs per-core long-lived containers (``pool``) vs one container per shard, on a
≥ 3 GB dataset with a regex (target: docker ≥ 0.85× local throughput), with the per-container
start-up cost. substructure: the rdkit image vs local on an indexed dataset (target: within 10%).
Outputs are checked equal (hits and a digest of the sorted lines).

    python benchmarks/docker/docker_vs_local.py [--size-gb 3.2 | --dataset DIR] [--pattern 'S\\(=O\\)\\(=O\\)N.*F']
        [--repeat 3] [--chem-mb 20 | --chem-dataset DIR] [--query 'c1ccccc1O'] [--jobs grep,substructure]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from data import dataset  # noqa: E402


def digest_run(ds: Any, job: Any, **options: Any) -> tuple[float, float, int, str]:
    """(wall seconds, container start-up seconds, hits, sha256 of the sorted result lines) of one run."""
    run = ds.run(job, **options)
    lines = sorted(line for r in run for line in r.payload.splitlines())
    startup = getattr(run.backend, "last_startup_s", 0.0)
    return run.stats.seconds, startup, run.stats.hits, hashlib.sha256(b"\n".join(lines)).hexdigest()


def head_to_head(ds: Any, job: Any, variants: dict[str, dict[str, Any]], repeat: int) -> dict[str, Any]:
    for options in variants.values():  # warm-up: page cache, clusters, image layers
        digest_run(ds, job, **options)
    walls: dict[str, list[float]] = {name: [] for name in variants}
    startups: dict[str, list[float]] = {name: [] for name in variants}
    outputs: dict[str, tuple[int, str]] = {}
    for _ in range(repeat):  # interleaved, so drift hits every side alike
        for name, options in variants.items():
            wall, startup, hits, digest = digest_run(ds, job, **options)
            walls[name].append(wall)
            startups[name].append(startup)
            outputs[name] = (hits, digest)
    mb = ds.manifest.bytes / 1e6
    base = statistics.median(walls["local"])
    rows = {}
    for name, w in walls.items():
        wall, startup = statistics.median(w), statistics.median(startups[name])
        rows[name] = {"median_s": wall, "mb_per_s": mb / wall, "throughput_vs_local": base / wall,
                      # the run's fixed cost (starting its slowest container) taken out:
                      "startup_s": startup, "steady_vs_local": base / (wall - startup), "runs": w}
    return {"mb": mb, "shards": len(ds.manifest.shards), "identical_output": len(set(outputs.values())) == 1,
            "hits": outputs["local"][0], "rows": rows}


def indexed_dataset(target_bytes: int) -> Path:
    """An indexed copy of a benchmark dataset in 2 MB shards (built once, then reused)."""
    import workbench as wb

    source = dataset(target_bytes, shard_size="2MB")
    indexed = source.with_name(source.name + "-indexed")
    if not (indexed / "manifest.json").exists():
        shutil.copytree(source, indexed, dirs_exist_ok=True)
        wb.open_dataset(indexed).build_index()
    return indexed


def main() -> None:
    import workbench as wb
    from workbench.jobs.substructure import SubstructureJob

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=3.2)
    ap.add_argument("--pattern", default=r"S\(=O\)\(=O\)N.*F")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dataset", type=Path, help="an ingested dataset to grep (instead of --size-gb)")
    ap.add_argument("--chem-mb", type=float, default=20)
    ap.add_argument("--chem-dataset", type=Path, help="an indexed dataset for substructure (instead of --chem-mb)")
    ap.add_argument("--query", default="c1ccccc1O")
    ap.add_argument("--jobs", default="grep,substructure", help="which comparisons to run")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    report: dict[str, Any] = {}
    if "grep" in args.jobs:
        report["grep"] = grep_report(args)
        print(json.dumps(report["grep"], indent=1), file=sys.stderr)
    if "substructure" in args.jobs:
        chem = wb.open_dataset(args.chem_dataset or indexed_dataset(int(args.chem_mb * 1e6)))
        report["substructure"] = head_to_head(chem, SubstructureJob(query=args.query), {
            "local": {"backend": "local"},
            "docker-pool": {"backend": "docker"},
        }, args.repeat)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


def grep_report(args: argparse.Namespace) -> dict[str, Any]:
    """Local vs pooled containers vs one container per shard, and one container's start-up cost."""
    import workbench as wb
    from workbench.backends import get_backend
    from workbench.bench.images import startup_cost
    from workbench.jobs.grep import GrepJob

    big = wb.open_dataset(args.dataset or dataset(int(args.size_gb * 1e9)))
    grep = GrepJob(args.pattern, extended=True)
    report = head_to_head(big, grep, {
        "local": {"backend": "local"},
        "docker-pool": {"backend": "docker", "mode": "pool"},
        "docker-per-shard": {"backend": "docker", "mode": "per-shard"},
    }, args.repeat)
    backend = get_backend("docker")
    tag, _ = backend.resolve_image(grep)  # type: ignore[attr-defined]
    report["container_startup_s"] = startup_cost(backend.client, tag, samples=5)  # type: ignore[attr-defined]
    return report


if __name__ == "__main__":
    main()
