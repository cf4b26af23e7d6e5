"""Head-to-head: ``workbench ingest`` against ``zcat | split -C`` on the same gzip input.

Reports wall time of both and workbench's peak RSS (targets: within 2x of split, <= 300 MB).

    python benchmarks/ingest_vs_split.py [--size-gb 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import ROOT, cid_smiles_file  # noqa: E402

WORKBENCH = str(Path(sys.executable).parent / "workbench")


def gz_input(size: int) -> Path:
    path = ROOT / f"cid-smiles-{size // 10**6}MB.tsv.gz"
    if not path.exists():
        with open(cid_smiles_file(size), "rb") as src, gzip.open(path.with_suffix(".tmp"), "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        path.with_suffix(".tmp").rename(path)
    return path


def run(command: list[str] | str, shell: bool = False) -> tuple[float, int]:
    """Wall seconds and the peak RSS (kB) of this very child (``wait4``, not all children so far)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, shell=shell, executable="/bin/bash" if shell else None)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{command} failed with status {proc.returncode}")
    return time.perf_counter() - start, usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    src = gz_input(int(args.size_gb * 1e9))
    out = ROOT / "ingest-out"
    split_times, wb_times, peak = [], [], 0
    for _ in range(args.repeat):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        t, _ = run(f"zcat {src} | split -C 64000000 - {out}/shard-", shell=True)
        split_times.append(t)
        shutil.rmtree(out)
        t, rss = run([WORKBENCH, "ingest", str(src), "--dataset", str(out), "--shard-size", "64MB"])
        wb_times.append(t)
        peak = max(peak, rss)
    shutil.rmtree(out, ignore_errors=True)
    s, w = statistics.median(split_times), statistics.median(wb_times)
    print(f"input {src.name} ({src.stat().st_size / 1e6:,.0f} MB gzip, {args.size_gb:g} GB plain)")
    print(f"  zcat | split -C : {s:.2f} s")
    print(f"  workbench ingest: {w:.2f} s  ({w / s:.2f}x split; target <= 2x)")
    print(f"  workbench ingest peak RSS: {peak / 1024:.0f} MB (target <= 300 MB)")


if __name__ == "__main__":
    main()
