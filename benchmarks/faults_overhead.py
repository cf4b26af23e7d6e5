"""Head-to-head: what the normal path pays for retries and the `-o FILE` journal.

Times `workbench grep PATTERN -d DIR -o FILE` of this tree against the same command of a baseline
revision without fault tolerance (by default the newest first-parent ancestor without the run journal),
each also writing to stdout only (`> FILE`), runs interleaved, page cache warm, medians.

    python benchmarks/faults_overhead.py [--size-gb 3.2] [--pattern P] [--fixed|-E] [--repeat 5] [--baseline REV]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import dataset  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
WORKBENCH = str(Path(sys.executable).parent / "workbench")


def default_baseline() -> str:
    """The newest first-parent ancestor of HEAD without the run journal (on a branch, pass ``--baseline main``)."""
    for rev in subprocess.run(["git", "-C", str(REPO), "rev-list", "--first-parent", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.split():
        has = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{rev}:workbench/runner/journal.py"],
                             capture_output=True).returncode == 0
        if not has:
            return rev
    raise SystemExit("every revision here has the run journal: pass --baseline REV")


def checkout(rev: str, target: Path) -> Path:
    """The baseline's sources (``git archive``), importable with PYTHONPATH=target."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "workbench"], capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target


def timed(argv: list[str], source: Path, stdout: Path | None) -> float:
    env = {**os.environ, "PYTHONPATH": str(source)}
    start = time.perf_counter()
    with open(stdout or os.devnull, "wb") as out:
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr.decode()}")
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=3.2)
    ap.add_argument("--pattern", default="c1ccc2[nH]ccc2c1")
    ap.add_argument("--fixed", action="store_true")
    ap.add_argument("-E", dest="extended", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--baseline", help="git revision to compare with (default: the last one before the run journal)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    flags = (["-F"] if args.fixed else []) + (["-E"] if args.extended else [])
    directory = Path(dataset(int(args.size_gb * 1e9)))
    baseline = args.baseline or default_baseline()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        sources = {"baseline": checkout(baseline, tmp / "baseline"), "this": REPO}
        command = [WORKBENCH, "grep", *flags, "-d", str(directory), "--", args.pattern]
        variants = {f"{name} {how}": (source, how) for name, source in sources.items() for how in ("> FILE", "-o FILE")}

        def run(name: str) -> float:
            source, how = variants[name]
            out = tmp / f"{name.replace(' ', '_').replace('>', 'gt')}.tsv"
            out.unlink(missing_ok=True)
            if how == "-o FILE":
                return timed([*command[:2], "-o", str(out), *command[2:]], source, None)
            return timed(command, source, out)

        for name in variants:  # warm-up: page cache, bytecode
            run(name)
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeat):
            for name in variants:  # interleaved
                times[name].append(run(name))
        outputs = {name: sorted((tmp / f"{name.replace(' ', '_').replace('>', 'gt')}.tsv").read_bytes().splitlines())
                   for name in variants}
    medians = {name: statistics.median(t) for name, t in times.items()}
    same = len({tuple(o) for o in outputs.values()}) == 1
    report = {"bytes": sum(p.stat().st_size for p in (directory / "shards").iterdir()), "pattern": args.pattern,
              "flags": flags, "baseline": baseline, "hits": len(next(iter(outputs.values()))), "medians_s": medians,
              "runs_s": times, "same_output": same,
              "overhead_o_file": medians["this -o FILE"] / medians["baseline -o FILE"] - 1,
              "overhead_stdout": medians["this > FILE"] / medians["baseline > FILE"] - 1}
    print(f"{report['bytes'] / 1e9:.2f} GB, pattern {args.pattern!r} {' '.join(flags)}, {report['hits']:,} hits, "
          f"baseline {baseline}")
    for name, seconds in medians.items():
        print(f"  {name:<18} {seconds:.3f} s  {report['bytes'] / 1e6 / seconds:,.0f} MB/s")
    print(f"  -o FILE (journal, retries) vs baseline -o FILE: {report['overhead_o_file']:+.1%} (target <= +3%)")
    print(f"  stdout only (retries) vs baseline stdout:      {report['overhead_stdout']:+.1%}")
    print(f"  same lines everywhere: {same}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
