"""Project a PubChem-size dataset onto other machines from rates measured on this one.

A roofline model per node, with the dataset split evenly over the nodes:

- CPU-bound work (SMILES parse and fingerprints at index build, substructure matching) runs at the
  measured rate per CPU-second here x the target's per-core factor x its cores x the parallel
  efficiency measured here.
- Memory-bound work (fingerprint scans of selective substructure screens and of similarity) takes the
  longer of that CPU time and the time to stream the bytes it reads per molecule through the node's
  memory bandwidth (one 256-byte fingerprint block per molecule, an upper bound).
- Memory: a worker process maps the index (page cache), so its own (anonymous) memory is its peak
  measured here, one worker per core; the client gathering results grows with the hits. Scans stay in
  memory when the fingerprint blocks fit in what is left of the node's RAM (less a reserve for the OS);
  otherwise they read the disk.

Network, result gathering and stragglers are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PUBCHEM = 116_000_000
OS_RESERVE = 0.5e9  # bytes a node keeps for the kernel, sshd, the Dask nanny


@dataclass(frozen=True)
class Target:
    name: str
    nodes: int
    cores: int  # per node
    core_factor: float  # per-core speed of RDKit-class code relative to this machine's core (assumption)
    bandwidth: float  # bytes/s of memory bandwidth per node (STREAM-class, assumption)
    ram: float  # bytes per node
    disk: float  # bytes/s a node reads its local disk (assumption)
    basis: str  # where the assumptions come from


PI4 = Target("8 × Raspberry Pi 4 (4 GB)", nodes=8, cores=4, core_factor=0.3, bandwidth=4e9, ram=4e9, disk=350e6,
             basis="Cortex-A72 1.5 GHz: ~1/3-1/4 of an x86 core for RDKit-class code (0.3); ~4 GB/s LPDDR4 "
                   "(sysbench/STREAM-class); USB 3 SSD ~350 MB/s")
SERVER = Target("1 × 16-core server", nodes=1, cores=16, core_factor=1.0, bandwidth=20e9, ram=64e9, disk=2e9,
                basis="cores as fast as this machine's (1.0); 20 GB/s (STREAM-class, a low estimate); 64 GB RAM; "
                      "NVMe ~2 GB/s")


def rates(measured: dict[str, Any]) -> dict[str, float]:
    """The per-core rates and per-molecule sizes the model needs, from ``pubchem_scale.py``'s JSON."""
    r = measured["rates"]
    return {k: float(r[k]) for k in ("build_mol_per_cpu_s", "selective_mol_per_cpu_s", "many_hit_mol_per_cpu_s",
                                      "similarity_fp_per_cpu_s", "parallel_efficiency", "index_bytes_per_molecule",
                                      "shard_bytes_per_molecule", "anon_bytes_per_molecule",
                                      "baseline_anon_bytes", "cli_start_s", "scan_bytes_per_molecule",
                                      "hot_bytes_per_molecule", "worker_anon_bytes",
                                      "client_anon_bytes_per_molecule", "host_bandwidth")}


def _seconds(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.2f} s" if s < 10 else f"{s:.0f} s"


def _gb(b: float) -> str:
    return f"{b / 1e9:.1f} GB"


def node_figures(m: dict[str, float], t: Target, molecules: int = PUBCHEM) -> dict[str, Any]:
    """Projected figures for one node of ``t`` holding its share of ``molecules``."""
    n = molecules / t.nodes
    cpu = t.core_factor * t.cores * min(1.0, m["parallel_efficiency"])  # this machine's cores' worth of work

    index, shards = n * m["index_bytes_per_molecule"], n * m["shard_bytes_per_molecule"]
    # a worker maps the index (page cache, not its own memory): its peak does not grow with the dataset
    anon = m["worker_anon_bytes"] * t.cores
    cache_room = t.ram - OS_RESERVE - anon
    hot = n * m["hot_bytes_per_molecule"]
    stream = t.bandwidth if hot <= cache_room else t.disk  # scans read the disk when fingerprints do not stay cached

    def scan(rate: float, memory_bound: bool) -> float:
        compute = n / (rate * cpu)
        return max(compute, n * m["scan_bytes_per_molecule"] / stream) if memory_bound else compute

    return {
        "molecules_per_node": n,
        "build_s": n / (m["build_mol_per_cpu_s"] * cpu),
        "index_bytes": index, "shard_bytes": shards,
        "selective_s": scan(m["selective_mol_per_cpu_s"], True),
        "many_hit_s": scan(m["many_hit_mol_per_cpu_s"], False),
        "similarity_s": scan(m["similarity_fp_per_cpu_s"], True),
        "cli_start_s": max(0.0, m["cli_start_s"]) / t.core_factor,
        "anon_bytes": anon,
        "fits_ram": anon + OS_RESERVE <= t.ram,
        "fits_page_cache": index + shards <= cache_room, "cache_room": max(0.0, cache_room),
        "hot_bytes": hot, "hot_fits": hot <= cache_room,
        "client_bytes": molecules * m["client_anon_bytes_per_molecule"],
        "cold_scan_s": n * m["scan_bytes_per_molecule"] / t.disk,
    }


def markdown(measured: dict[str, Any], targets: tuple[Target, ...] = (PI4, SERVER), molecules: int = PUBCHEM) -> str:
    """The projection as a Markdown table, then its assumptions."""
    m = rates(measured)
    m["workers"] = measured.get("workers", 2)
    figures = [node_figures(m, t, molecules) for t in targets]

    def row(label: str, cell) -> str:
        return "| " + " | ".join([label, *(cell(f, t) for f, t in zip(figures, targets))]) + " |"

    lines = [
        f"| PubChem {molecules / 1e6:.0f} M (projected) | " + " | ".join(t.name for t in targets) + " |",
        "| --- |" + " --- |" * len(targets),
        row("molecules per node", lambda f, t: f"{f['molecules_per_node'] / 1e6:.1f} M"),
        row("index build (all cores)", lambda f, t: _seconds(f["build_s"])),
        row("index on disk per node (+ shards)", lambda f, t: f"{_gb(f['index_bytes'])} (+ {_gb(f['shard_bytes'])})"),
        row("substructure, selective (screen-bound)", lambda f, t: _seconds(f["selective_s"])),
        row("substructure, many hits (match-bound)", lambda f, t: _seconds(f["many_hit_s"])),
        row("similarity, top 10", lambda f, t: _seconds(f["similarity_s"])),
        row("+ start of a CLI command (cold process)", lambda f, t: _seconds(f["cli_start_s"])),
        row("worker processes' own memory per node (one per core) vs RAM",
            lambda f, t: f"{_gb(f['anon_bytes'])} of {_gb(t.ram)}" + ("" if f["fits_ram"] else " **does not fit**")),
        row("fingerprints (what scans read) fit in page cache",
            lambda f, t: (f"yes ({_gb(f['hot_bytes'])} of {_gb(f['cache_room'])})" if f["hot_fits"] else
                          f"no ({_gb(f['hot_bytes'])} of {_gb(f['cache_room'])}): scans read the disk, "
                          f"≥ {_seconds(f['cold_scan_s'])}")),
        row("client holding a many-hit query's result (one machine)", lambda f, t: _gb(f["client_bytes"])),
        row("whole index + shards fit in page cache",
            lambda f, t: (f"yes ({_gb(f['index_bytes'] + f['shard_bytes'])} of {_gb(f['cache_room'])} left)"
                          if f["fits_page_cache"] else
                          f"no ({_gb(f['index_bytes'] + f['shard_bytes'])}, {_gb(f['cache_room'])} left): a scan reads "
                          f"the disk, ≥ {_seconds(f['cold_scan_s'])}")),
    ]
    notes = [
        "",
        f"Measured here (per CPU-second of one core): index build {m['build_mol_per_cpu_s']:,.0f} mol/s, "
        f"selective substructure {m['selective_mol_per_cpu_s']:,.0f} mol/s, many-hit substructure "
        f"{m['many_hit_mol_per_cpu_s']:,.0f} mol/s, similarity {m['similarity_fp_per_cpu_s']:,.0f} fingerprints/s; "
        f"parallel efficiency {m['parallel_efficiency']:.2f}; index {m['index_bytes_per_molecule']:.0f} B/molecule, "
        f"shards {m['shard_bytes_per_molecule']:.0f} B/molecule; session {m['anon_bytes_per_molecule']:,.0f} anonymous "
        f"B/molecule above the started processes (peak of one worker process {m['worker_anon_bytes'] / 1e6:,.0f} MB, "
        f"client {m['client_anon_bytes_per_molecule']:,.0f} B/molecule: the result tables); "
        f"memory read bandwidth here {m['host_bandwidth'] / 1e9:.1f} GB/s (one core).",
        "Assumptions: " + "; ".join(f"{t.name}: {t.basis}" for t in targets) + ".",
        "CPU-bound rows scale by per-core factor x cores x the efficiency measured here; memory-bound rows "
        f"(selective screen, similarity) are at least {m['scan_bytes_per_molecule']:.0f} B/molecule through the "
        "node's memory bandwidth (one fingerprint block, an upper bound), or its disk when the fingerprints do not "
        "fit in the page cache; a worker's own memory is its measured peak (the index is mapped, not loaded); the "
        "client's grows with the hits it gathers; network and result gathering are not modelled.",
    ]
    return "\n".join(lines + notes)
