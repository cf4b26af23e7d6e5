"""Head-to-head: ``workbench grep`` against ``xargs -P<cores> -n1 grep`` over the same shard files.

Both sides write their output to a file, same pattern, page cache warm, runs interleaved.
Also measures the fixed start-up cost on a tiny dataset (workbench minus xargs).

    python benchmarks/grep_vs_xargs.py [--size-gb 3] [--pattern 'C(=O)N'] [--fixed] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import dataset  # noqa: E402

WORKBENCH = str(Path(sys.executable).parent / "workbench")


def shard_paths(directory: Path) -> list[str]:
    manifest = json.loads((directory / "manifest.json").read_text())
    return [str(directory / s["path"]) for s in manifest["shards"]]


def time_shell(command: str) -> float:
    start = time.perf_counter()
    subprocess.run(command, shell=True, check=False, executable="/bin/bash")
    return time.perf_counter() - start


def head_to_head(directory: Path, pattern: str, flags: list[str], repeat: int, out: Path) -> dict:
    cores = len(os.sched_getaffinity(0))
    quoted = " ".join(f"'{f}'" for f in flags)
    listing = out.parent / "shards.txt"
    listing.write_text("\n".join(shard_paths(directory)) + "\n")
    xargs = f"xargs -a {listing} -P{cores} -n1 grep {quoted} -e '{pattern}' > {out}.xargs"
    wbench = f"{WORKBENCH} grep --dataset {directory} {quoted} -- '{pattern}' > {out}.wb"
    time_shell(f"cat {listing} | xargs cat > /dev/null")  # warm the page cache
    time_shell(xargs), time_shell(wbench)  # warm-up runs
    x, w = [], []
    for _ in range(repeat):  # interleaved
        x.append(time_shell(xargs))
        w.append(time_shell(wbench))
    # Ground truth, untimed: one serial grep over the concatenated shards. (Two greps writing to one
    # file through xargs -P interleave their block-buffered output, so xargs' lines can be torn.)
    time_shell(f"cat {listing} | xargs cat | grep {quoted} -e '{pattern}' > {out}.truth")
    truth = sorted(Path(f"{out}.truth").read_bytes().splitlines())
    size = sum(os.path.getsize(p) for p in shard_paths(directory))
    return {"bytes": size, "xargs_s": statistics.median(x), "workbench_s": statistics.median(w),
            "xargs_MBps": size / 1e6 / statistics.median(x), "workbench_MBps": size / 1e6 / statistics.median(w),
            "ratio": statistics.median(x) / statistics.median(w), "hits": len(truth),
            "workbench_correct": sorted(Path(f"{out}.wb").read_bytes().splitlines()) == truth,
            "xargs_correct": sorted(Path(f"{out}.xargs").read_bytes().splitlines()) == truth,
            "xargs_runs": x, "workbench_runs": w}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=3.0)
    ap.add_argument("--pattern", default="C(=O)N")
    ap.add_argument("--fixed", action="store_true")
    ap.add_argument("-E", dest="extended", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    flags = (["-F"] if args.fixed else []) + (["-E"] if args.extended else [])
    out = Path(dataset(int(args.size_gb * 1e9))).parent / "out"
    big = head_to_head(Path(dataset(int(args.size_gb * 1e9))), args.pattern, flags, args.repeat, out)
    tiny = head_to_head(Path(dataset(200_000, shard_size="1MB")), args.pattern, flags, max(args.repeat, 10), out)  # one shard
    startup = tiny["workbench_s"] - tiny["xargs_s"]
    report = {"pattern": args.pattern, "flags": flags, "large": big, "tiny": tiny, "startup_cost_s": startup}
    print(f"{big['bytes'] / 1e9:.2f} GB, pattern {args.pattern!r} {' '.join(flags)}")
    print(f"  xargs -P grep : {big['xargs_s']:.3f} s  {big['xargs_MBps']:,.0f} MB/s")
    print(f"  workbench grep: {big['workbench_s']:.3f} s  {big['workbench_MBps']:,.0f} MB/s")
    print(f"  throughput ratio workbench/xargs: {big['ratio']:.3f} (target >= 1.0); {big['hits']:,} hits")
    print(f"  output equals serial grep: workbench {big['workbench_correct']}, xargs {big['xargs_correct']}")
    print(f"  fixed start-up cost (one-shard dataset, workbench - xargs): {startup:.3f} s (target <= 0.15)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
