"""PubChem-scale run on this machine, and its projection to PubChem (116 M) on boards and a server.

``--molecules`` MOSES SMILES replicated with new CIDs (``bench-data/``, never committed) are ingested
into 64 MB shards (both reused when present), then:

- index build with ``--workers`` (``workbench index``): wall time, mol/s, CPU seconds of the whole
  process tree (``RUSAGE_CHILDREN``), peak anonymous RSS; parallel efficiency = rate(W) / (W x rate(1))
  from wall times on a separate small dataset (``--efficiency-molecules`` in ``--efficiency-shards``
  shards), built once with 1 worker and once with W;
- disk: index bytes (every file under ``DIR/index/``) and shard bytes per molecule;
- queries with the page cache warm: substructure panel queries (selective and many-hit) and two
  similarity searches (Tanimoto >= 0.7; top 10), each as a fresh CLI command (a cold process: its first
  query), wall time and counts; then the same queries in one API session (one Python process, local
  backend, ``--workers`` workers, ``--passes`` times): per-query wall and CPU seconds of the process tree
  and the peak anonymous RSS across it (sampled), per molecule;
- this machine's memory read bandwidth (one core, numpy);
- the projection (``projection.py``) as a Markdown table.

    python benchmarks/chem/pubchem_scale.py [--molecules 10000000] [--workers 2] [--json out.json]
    python benchmarks/chem/pubchem_scale.py --project-only --from-json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import projection  # noqa: E402
from data import ROOT, real_smiles  # noqa: E402
from session_memory import anonymous_rss  # noqa: E402
from substructure_vs_substructlibrary import panel  # noqa: E402

#: panel names: selective screens first, then queries most molecules pass
SUBSTRUCTURE = ("het_6666_A", "aryl_carbamate", "diacylhydrazine", "Benzylic_quaternary_Nitrogen", "naphthalene",
                "trifluoromethyl", "sulfonamide", "piperidine", "amide", "benzene", "C~N~O")
SIMILAR = "CC(=O)Nc1ccc(O)cc1"
SELECTIVE, MANY_HIT = 0.01, 0.10  # hit fractions: below is screen-bound, above is match-bound
SCAN_BYTES = 256  # at most what a screen or a similarity search reads per molecule: one fingerprint block
HOT_BYTES = 512  # both fingerprint blocks: what must stay in the page cache for scans not to read the disk


def workbench_cli() -> list[str]:
    script = Path(sys.executable).with_name("workbench")
    return [str(script)] if script.exists() else [sys.executable, "-m", "workbench"]


def queries() -> list[tuple[str, str, str]]:
    """(kind, query, name): the substructure panel's chosen queries, then the two similarity searches."""
    smarts = {name: q for q, name in panel()}
    return ([("substructure", smarts[name], name) for name in SUBSTRUCTURE]
            + [("similar-0.7", SIMILAR, "paracetamol >= 0.7"), ("similar-top10", SIMILAR, "paracetamol top 10")])


# --- data --------------------------------------------------------------------------------------------

def source_file(molecules: int) -> Path:
    """``CID<TAB>SMILES`` lines, CIDs 1..N, MOSES SMILES repeated in order."""
    path = ROOT / f"pubchem-scale-{molecules}.tsv"
    if path.exists():
        return path
    ROOT.mkdir(parents=True, exist_ok=True)
    smiles = real_smiles()
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        for start in range(0, molecules, len(smiles)):
            count = min(len(smiles), molecules - start)
            fh.write(b"".join(b"%d\t%s\n" % (start + i + 1, s) for i, s in enumerate(smiles[:count])))
    tmp.rename(path)
    return path


def head_file(source: Path, molecules: int) -> Path:
    """The first ``molecules`` lines of ``source``."""
    path = ROOT / f"{source.stem}-head-{molecules}.tsv"
    if not path.exists():
        with open(source, "rb") as src, open(path.with_suffix(".tmp"), "wb") as out:
            for _, line in zip(range(molecules), src):
                out.write(line)
        path.with_suffix(".tmp").rename(path)
    return path


def ingested(source: Path, directory: Path, shard_size: str | int) -> tuple[Path, float | None]:
    """The dataset of ``source`` (ingested now unless present), and the ingest seconds (None: reused)."""
    import workbench as wb

    if (directory / "manifest.json").exists():
        return directory, None
    start = time.perf_counter()
    wb.ingest([source], directory, shard_size=shard_size, format="cid-smiles", force=True)
    return directory, time.perf_counter() - start


def tree_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) if directory.exists() else 0


# --- measured commands -------------------------------------------------------------------------------

def tree_sample(pid: int, cpu: dict[int, float]) -> int:
    """Record the CPU seconds of ``pid`` and each descendant in ``cpu`` (last seen); returns their RssAnon."""
    import psutil

    try:
        tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for proc in tree:
        try:
            t = proc.cpu_times()
            cpu[proc.pid] = max(cpu.get(proc.pid, 0.0), t.user + t.system)
        except psutil.NoSuchProcess:
            pass
    return anonymous_rss(pid)


def measured(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd``: wall seconds, CPU seconds of its whole process tree, stdout, peak anonymous RSS.

    The tree is sampled every 0.25 s (psutil), which loses at most the last 0.25 s of each process;
    ``RUSAGE_CHILDREN`` (exact, but only for descendants someone waited for) is used when larger.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak, cpu, done = 0, dict[int, float](), threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.25):
            peak = max(peak, tree_sample(proc.pid, cpu))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err.decode()[-2000:]}")
    waited = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": max(waited, sum(cpu.values())), "stdout": out.decode(), "stderr": err.decode(),
            "peak_anon_rss": peak, "load_before": load, "exit": proc.returncode}


def build(directory: Path, workers: int, force: bool) -> dict[str, Any]:
    """``workbench index`` on ``directory`` with ``workers``: timings, rates and the run's stats."""
    import workbench as wb

    stats_path = directory / "index-stats.json"
    cmd = [*workbench_cli(), "index", "-d", str(directory), "-w", str(workers), "--stats-json", str(stats_path)]
    run = measured(cmd + (["--force"] if force else []))
    records = wb.open_dataset(directory).manifest.records
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    task_s = sum(s["seconds"] for s in stats.get("shards", []))
    return {"workers": workers, "molecules": records, "shards": len(wb.open_dataset(directory).manifest.shards),
            "wall_s": run["wall_s"], "cpu_s": run["cpu_s"], "mol_per_s": records / run["wall_s"],
            "mol_per_cpu_s": records / run["cpu_s"] if run["cpu_s"] else None,
            "mol_per_task_s": records / task_s if task_s else None, "peak_anon_rss": run["peak_anon_rss"],
            "load_before": run["load_before"]}


def efficiency(source: Path, molecules: int, shards: int, workers: int) -> dict[str, Any]:
    """Index build of a small dataset with 1 and with ``workers`` workers: parallel efficiency from wall rates."""
    head = head_file(source, molecules)
    shard_size = head.stat().st_size // shards + 1
    directory, _ = ingested(head, ROOT / f"{head.stem}-{shards}shards", shard_size)
    one, many = build(directory, 1, force=True), build(directory, workers, force=True)
    return {"one": one, "many": many, "efficiency": many["mol_per_s"] / (workers * one["mol_per_s"])}


def warm(paths: list[Path]) -> dict[str, Any]:
    """Read every file once (page cache warm); the resident share before and after, when measurable."""
    try:
        from workbench.util.pagecache import resident_fraction
    except ImportError:  # pragma: no cover - only the residency report is lost
        resident_fraction = None
    before = resident_fraction(paths) if resident_fraction else None
    for path in paths:
        with open(path, "rb") as fh:
            while fh.read(16 << 20):
                pass
    return {"resident_before": before, "resident_after": resident_fraction(paths) if resident_fraction else None,
            "bytes": sum(p.stat().st_size for p in paths)}


def cli_queries(directory: Path, workers: int) -> list[dict[str, Any]]:
    rows = []
    for kind, query, name in queries():
        base = [*workbench_cli()]
        if kind == "substructure":
            cmd = base + ["substructure", query, "-d", str(directory), "-c", "-w", str(workers)]
        else:
            option = ["-t", "0.7"] if kind == "similar-0.7" else ["--top", "10"]
            cmd = base + ["similar", query, "-d", str(directory), *option, "-w", str(workers)]
        run = measured(cmd)
        out = run["stdout"].strip()
        hits = int(out.splitlines()[-1]) if kind == "substructure" and out else len(out.splitlines())
        rows.append({"kind": kind, "name": name, "query": query, "hits": hits, "wall_s": run["wall_s"],
                     "cpu_s": run["cpu_s"]})
        print(f"  cli {name[:32]:32} {hits:>11,} hits {run['wall_s']:8.2f} s", flush=True)
    return rows


# --- the API session (run in a child process so its memory is the session's alone) --------------------

def tree_cpu() -> float:
    import psutil

    total = 0.0
    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def warmup_dataset() -> Path:
    """Ten indexed molecules: a session's first query on them starts its workers (the memory baseline)."""
    import workbench as wb

    directory = ROOT / "pubchem-scale-warmup"
    if not (directory / "manifest.json").exists() or wb.open_dataset(directory).info()["index"] != "complete":
        source = ROOT / "pubchem-scale-warmup.tsv"
        source.write_bytes(b"".join(b"%d\t%s\n" % (i, s) for i, s in enumerate(real_smiles(10)[:10], 1)))
        wb.ingest([source], directory, format="cid-smiles", force=True).build_index(workers=1)
    return directory


def session(directory: Path, workers: int, passes: int) -> dict[str, Any]:
    """One Python process: every query ``passes`` times through the public API on the local backend.

    The workers are started first (one substructure and one similarity query on ten molecules) so the
    baseline holds the interpreters and imports, not anything per molecule.
    """
    import psutil

    import workbench as wb

    small = wb.open_dataset(warmup_dataset())
    small.substructure("c1ccccc1", workers=workers)
    small.similar(SIMILAR, top=1, workers=workers)
    ds = wb.open_dataset(directory)
    baseline = anonymous_rss()
    peak, done = baseline, threading.Event()

    workers_peak, client_peak = 0, 0

    def sample() -> None:
        nonlocal peak, workers_peak, client_peak
        while not done.wait(0.2):
            peak = max(peak, anonymous_rss())
            client_peak = max(client_peak, own_anonymous_rss(os.getpid()))
            workers_peak = max([workers_peak] + [own_anonymous_rss(p.pid) for p in psutil.Process().children(recursive=True)])

    threading.Thread(target=sample, daemon=True).start()
    rows = []
    for run in range(passes):
        for kind, query, name in queries():
            t0, c0 = time.perf_counter(), tree_cpu()
            if kind == "substructure":
                table = ds.substructure(query, workers=workers)
            elif kind == "similar-0.7":
                table = ds.similar(query, threshold=0.7, workers=workers)
            else:
                table = ds.similar(query, top=10, workers=workers)
            seconds, cpu = time.perf_counter() - t0, tree_cpu() - c0
            memory = anonymous_rss()
            peak = max(peak, memory)
            rows.append({"pass": run + 1, "kind": kind, "name": name, "query": query, "hits": table.num_rows,
                         "wall_s": seconds, "cpu_s": cpu, "anon_rss": memory})
            print(f"  api pass {run + 1} {name[:32]:32} {table.num_rows:>11,} hits {seconds:8.2f} s "
                  f"cpu {cpu:7.2f} s anon {memory / 1e6:8.1f} MB", file=sys.stderr, flush=True)
    done.set()
    n = ds.manifest.records
    return {"molecules": n, "workers": workers, "passes": passes, "baseline_anon_rss": baseline,
            "peak_anon_rss": peak, "peak_anon_bytes_per_molecule": peak / n,
            "marginal_anon_bytes_per_molecule": (peak - baseline) / n,
            "worker_peak_anon_rss": workers_peak, "client_peak_anon_rss": client_peak, "queries": rows}


def own_anonymous_rss(pid: int) -> int:
    """``RssAnon`` of one process (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return next((int(line.split()[1]) * 1024 for line in fh if line.startswith("RssAnon:")), 0)
    except OSError:
        return 0


def api_session(directory: Path, workers: int, passes: int) -> dict[str, Any]:
    warmup_dataset()
    cmd = [sys.executable, __file__, "--session", str(directory), "--workers", str(workers), "--passes", str(passes)]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, check=True)
    return json.loads(proc.stdout)


# --- this machine ------------------------------------------------------------------------------------

def read_bandwidth(megabytes: int = 512, repeat: int = 5) -> float:
    """Bytes/s one core reads from memory (numpy sum over an array far larger than the caches)."""
    import numpy as np

    a = np.ones(megabytes * (1 << 20) // 8)
    best = min(_timed(a.sum) for _ in range(repeat))
    return a.nbytes / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def host() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cpu": model, "cores": os.cpu_count(), "machine": platform.machine(),
            "ram_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "read_bandwidth": read_bandwidth()}


# --- summary -----------------------------------------------------------------------------------------

def derived(result: dict[str, Any]) -> dict[str, Any]:
    """The per-core rates and per-molecule sizes the projection takes."""
    n, api = result["molecules"], result["session"]
    last = [q for q in api["queries"] if q["pass"] == api["passes"]]

    def rate(rows: list[dict[str, Any]]) -> float | None:
        """The median over ``rows`` of molecules per CPU-second of the session's process tree."""
        each = sorted(n / q["cpu_s"] for q in rows if q["cpu_s"] > 0)
        return each[len(each) // 2] if each else None

    subs = [q for q in last if q["kind"] == "substructure"]
    selective = [q for q in subs if q["hits"] / n < SELECTIVE]
    many = [q for q in subs if q["hits"] / n >= MANY_HIT]
    cli = {q["name"]: q for q in result["cli"]}
    first = {q["name"]: q for q in api["queries"] if q["pass"] == 1}
    start = sorted(cli[k]["wall_s"] - first[k]["wall_s"] for k in cli if k in first)
    build_run = result["build"]
    return {
        "build_mol_per_cpu_s": build_run["mol_per_cpu_s"] or build_run["mol_per_s"] / result["workers"],
        "selective_mol_per_cpu_s": rate(selective), "many_hit_mol_per_cpu_s": rate(many),
        "similarity_fp_per_cpu_s": rate([q for q in last if q["kind"] == "similar-top10"]),
        "parallel_efficiency": result["efficiency"]["efficiency"],
        "index_bytes_per_molecule": result["disk"]["index_bytes"] / n,
        "shard_bytes_per_molecule": result["disk"]["shard_bytes"] / n,
        "scan_bytes_per_molecule": SCAN_BYTES, "hot_bytes_per_molecule": HOT_BYTES,
        "worker_anon_bytes": api.get("worker_peak_anon_rss") or 0,
        "client_anon_bytes_per_molecule": (api.get("client_peak_anon_rss") or 0) / n,
        "anon_bytes_per_molecule": api["marginal_anon_bytes_per_molecule"],
        "baseline_anon_bytes": api["baseline_anon_rss"],
        "cli_start_s": start[len(start) // 2] if start else 0.0,
        "host_bandwidth": result["host"]["read_bandwidth"],
        "selective_queries": [q["name"] for q in selective], "many_hit_queries": [q["name"] for q in many],
    }


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def report(result: dict[str, Any]) -> str:
    n, b, e, d, api, r = (result["molecules"], result["build"], result["efficiency"], result["disk"],
                          result["session"], result["rates"])
    lines = [
        f"{n:,} molecules, {b['shards']} shards, {result['host']['cpu']} ({result['host']['cores']} cores)",
        f"index build, {b['workers']} workers: {b['wall_s']:.1f} s, {b['mol_per_s']:,.0f} mol/s, "
        f"{b['cpu_s']:.1f} CPU s ({b['mol_per_cpu_s']:,.0f} mol/CPU-s; {b['mol_per_task_s']:,.0f} mol per shard-task "
        f"second), peak anon {b['peak_anon_rss'] / 1e6:,.0f} MB, load average before {b['load_before']:.1f}",
        f"parallel efficiency ({e['one']['molecules']:,} molecules, {e['one']['shards']} shards): "
        f"1 worker {e['one']['mol_per_s']:,.0f} mol/s, {e['many']['workers']} workers {e['many']['mol_per_s']:,.0f} "
        f"mol/s -> {e['efficiency']:.2f} (load average before {e['one']['load_before']:.1f}, {e['many']['load_before']:.1f})",
        f"disk: index {d['index_bytes'] / 1e6:,.1f} MB = {d['index_bytes'] / n:.0f} B/molecule, shards "
        f"{d['shard_bytes'] / 1e6:,.1f} MB = {d['shard_bytes'] / n:.0f} B/molecule",
        f"session: peak anon {api['peak_anon_rss'] / 1e6:,.0f} MB = {api['peak_anon_bytes_per_molecule']:,.0f} "
        f"B/molecule ({api['marginal_anon_bytes_per_molecule']:,.0f} above the started workers)",
        f"per CPU-second (median): selective {_rate(r['selective_mol_per_cpu_s'])} mol/s "
        f"({', '.join(r['selective_queries'])}); many-hit {_rate(r['many_hit_mol_per_cpu_s'])} mol/s "
        f"({', '.join(r['many_hit_queries'])}); similarity top 10 {_rate(r['similarity_fp_per_cpu_s'])} fingerprints/s",
        "",
        "| query | hits | CLI (cold process) | API first | API repeated | API CPU s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    by_pass: dict[tuple[int, str], dict[str, Any]] = {(q["pass"], q["name"]): q for q in api["queries"]}
    for q in result["cli"]:
        first, again = by_pass[(1, q["name"])], by_pass.get((api["passes"], q["name"]))
        lines.append(f"| {q['name']} | {q['hits']:,} | {q['wall_s']:.2f} s | {first['wall_s']:.2f} s | "
                     f"{again['wall_s']:.2f} s | {again['cpu_s']:.2f} |")
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> dict[str, Any]:
    print(f"data: {args.molecules:,} molecules under {ROOT}", flush=True)
    source = source_file(args.molecules)
    directory, ingest_s = ingested(source, ROOT / f"pubchem-scale-{args.molecules}-{args.shard_size}", args.shard_size)
    import workbench as wb

    ds = wb.open_dataset(directory)
    saved = directory.with_name(directory.name + ".build.json")
    if args.rebuild or ds.info()["index"] != "complete" or not saved.exists():
        print(f"index build, {args.workers} workers ...", flush=True)
        saved.write_text(json.dumps(build(directory, args.workers, force=True)))
    build_run = json.loads(saved.read_text())
    print(f"parallel efficiency on {args.efficiency_molecules:,} molecules ...", flush=True)
    eff = efficiency(source, args.efficiency_molecules, args.efficiency_shards, args.workers)
    disk = {"index_bytes": tree_bytes(directory / "index"), "shard_bytes": tree_bytes(directory / "shards")}
    files = [p for sub in ("index", "shards") for p in (directory / sub).rglob("*") if p.is_file()]
    cache = warm(files)
    print("queries: fresh CLI commands ...", flush=True)
    cli = cli_queries(directory, args.workers)
    print("queries: one API session ...", flush=True)
    api = api_session(directory, args.workers, args.passes)
    result = {"molecules": ds.manifest.records, "workers": args.workers, "shard_size": args.shard_size,
              "ingest_s": ingest_s, "build": build_run, "efficiency": eff, "disk": disk, "page_cache": cache,
              "cli": cli, "session": api, "host": host()}
    result["rates"] = derived(result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecules", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-size", default="64MB")
    parser.add_argument("--efficiency-molecules", type=int, default=200_000)
    parser.add_argument("--efficiency-shards", type=int, default=4)
    parser.add_argument("--passes", type=int, default=2, help="times the API session runs the queries")
    parser.add_argument("--rebuild", action="store_true", help="build the index again even when complete")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument("--project-only", action="store_true", help="only print the projection (--from-json)")
    parser.add_argument("--from-json", type=Path, help="a JSON written by --json")
    parser.add_argument("--pi-core-factor", type=float, default=projection.PI4.core_factor)
    parser.add_argument("--server-core-factor", type=float, default=projection.SERVER.core_factor)
    parser.add_argument("--session", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.session:
        print(json.dumps(session(args.session, args.workers, args.passes)))
        return
    if args.project_only or args.from_json:
        if not args.from_json:
            parser.error("--project-only needs --from-json FILE")
        result = json.loads(args.from_json.read_text())
    else:
        result = run(args)
        if args.json:
            args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(report(result))
        print()
    from dataclasses import replace

    targets = (replace(projection.PI4, core_factor=args.pi_core_factor),
               replace(projection.SERVER, core_factor=args.server_core_factor))
    print(projection.markdown(result, targets))


if __name__ == "__main__":
    main()
