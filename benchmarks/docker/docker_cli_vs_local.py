"""Head-to-head, as a user runs it: ``workbench grep --backend docker`` against ``--backend local``,
each a fresh CLI command (start-up, containers started and stopped, all included), runs interleaved.

Target (issue: the fast path): docker >= 0.90x the local backend on a >= 3 GB regex search.
Outputs are checked equal (a digest of the sorted lines).

    python benchmarks/docker/docker_cli_vs_local.py [--size-gb 3.2] [--pattern 'C1CCN|Cl.*Br'] [--repeat 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from data import dataset  # noqa: E402

WORKBENCH = str(Path(sys.executable).parent / "workbench")


def timed(argv: list[str], out: Path) -> float:
    start = time.perf_counter()
    with open(out, "wb") as fh:
        subprocess.run(argv, stdout=fh, check=False)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=3.2)
    ap.add_argument("--pattern", default="C1CCN|Cl.*Br")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    directory = Path(dataset(int(args.size_gb * 1e9)))
    out = directory.parent / "out"
    sides = {name: [WORKBENCH, "grep", "-E", args.pattern, "--dataset", str(directory), "--backend", name]
             for name in ("local", "docker")}
    for name, argv in sides.items():  # warm-up: page cache, image layers
        timed(argv, out.with_suffix(f".{name}"))
    runs: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.repeat):
        for name, argv in sides.items():
            runs[name].append(timed(argv, out.with_suffix(f".{name}")))
    digests = {name: hashlib.sha256(b"\n".join(sorted(out.with_suffix(f".{name}").read_bytes().splitlines())))
               .hexdigest() for name in sides}
    local, docker = (statistics.median(runs[n]) for n in ("local", "docker"))
    size = sum(f.stat().st_size for f in (directory / "shards").glob("*.tsv"))
    report = {"bytes": size, "pattern": args.pattern, "local_s": local, "docker_s": docker,
              "ratio": local / docker, "identical_output": len(set(digests.values())) == 1, "runs": runs}
    print(f"{size / 1e9:.2f} GB, grep -E {args.pattern!r}, fresh CLI commands, median of {args.repeat}")
    print(f"  --backend local : {local:.3f} s  {size / 1e6 / local:,.0f} MB/s")
    print(f"  --backend docker: {docker:.3f} s  {size / 1e6 / docker:,.0f} MB/s")
    print(f"  docker/local throughput: {local / docker:.3f} (target >= 0.90); identical output: "
          f"{report['identical_output']}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
