"""`workbench nodes` on a real testbed: reachable nodes, and every unreachable reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.cluster.conftest import NODES, cluster_variant
from workbench.cluster.inventory import load_cluster
from workbench.cluster.probe import probe_nodes

pytestmark = pytest.mark.ssh


def nodes_cli(cluster_file: Path) -> tuple[int, list[dict], str]:
    proc = subprocess.run([sys.executable, "-m", "workbench", "nodes", "--cluster", str(cluster_file), "--json"],
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def test_all_nodes_reachable_with_facts(testbed):
    rc, reports, err = nodes_cli(testbed)
    assert rc == 0, err
    assert [r["name"] for r in reports] == [f"node{i + 1}" for i in range(NODES)]
    for r in reports:
        assert r["reachable"] is True and r["error"] is None
        assert r["arch"] == os.uname().machine
        assert r["cores"] == len(os.sched_getaffinity(0))
        assert r["memory"] > 0 and r["data_dir_free"] > 0
        assert r["python"] == ".".join(map(str, sys.version_info[:3]))
        import workbench

        assert r["workbench"] == workbench.__version__


def test_stopped_sshd_is_reported_connection_refused(testbed):
    from workbench.testing.testbed import start_sshd, stop_node

    stop_node(testbed, "node2")
    try:
        rc, reports, err = nodes_cli(testbed)
    finally:
        start_sshd(testbed, "node2")
    assert rc == 1
    by_name = {r["name"]: r for r in reports}
    assert by_name["node2"]["reachable"] is False
    assert by_name["node2"]["error"] == "connection refused"
    assert all(by_name[n]["reachable"] for n in by_name if n != "node2")
    assert "Traceback" not in err
    assert probe_nodes(load_cluster(testbed))[1].reachable  # back after restart


def test_wrong_host_key_is_refused(testbed, tmp_path):
    import asyncssh

    known = Path(tomllib.loads(testbed.read_text())["cluster"]["known_hosts"]).read_text().splitlines()
    forged = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2]
    lines = [f"{line.split()[0]} {' '.join(forged)}" if line.startswith("10.") and i == 0 else line
             for i, line in enumerate(known)]
    (tmp_path / "known_hosts").write_text("\n".join(lines) + "\n")
    variant = cluster_variant(testbed, tmp_path / "c.toml", head={"known_hosts": str(tmp_path / "known_hosts")})
    reports = probe_nodes(load_cluster(variant))
    assert reports[0].reachable is False
    assert reports[0].error.startswith("host key mismatch")
    assert reports[0].arch is None  # nothing was run on it
    assert [r.reachable for r in reports[1:]] == [True] * (NODES - 1)


def test_unknown_host_is_refused(testbed, tmp_path):
    (tmp_path / "known_hosts").write_text("")
    variant = cluster_variant(testbed, tmp_path / "c.toml", head={"known_hosts": str(tmp_path / "known_hosts")})
    reports = probe_nodes(load_cluster(variant))
    assert {r.error for r in reports} == {"host key unknown (no entry in known_hosts; refused)"}


def test_unauthorised_key_fails_authentication(testbed, tmp_path):
    import asyncssh

    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(tmp_path / "other_key"))
    variant = cluster_variant(testbed, tmp_path / "c.toml", nodes={"node3": {"key": str(tmp_path / "other_key")}})
    rc, reports, err = nodes_cli(variant)
    assert rc == 1
    assert reports[2]["error"] == "authentication failed"
    assert str(tmp_path / "other_key") not in err + json.dumps(reports)  # no key material or paths leak


def test_silent_address_times_out(testbed, tmp_path):
    first = load_cluster(testbed).nodes[0].host
    silent = first.rsplit(".", 1)[0] + ".250"  # in the testbed's subnet, on no node
    variant = cluster_variant(testbed, tmp_path / "c.toml", head={"connect_timeout": 1.0},
                              extra_nodes=[{"name": "ghost", "host": silent}])
    reports = probe_nodes(load_cluster(variant))
    assert reports[-1].name == "ghost" and reports[-1].error == "timeout after 1 s"
    assert all(r.reachable for r in reports[:-1])


@pytest.mark.parametrize("missing", ["known_hosts", "key"])
def test_missing_known_hosts_or_key_is_a_clear_error(testbed, tmp_path, missing):
    variant = cluster_variant(testbed, tmp_path / "c.toml", head={missing: str(tmp_path / "absent")})
    proc = subprocess.run([sys.executable, "-m", "workbench", "nodes", "--cluster", str(variant)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and str(tmp_path / "absent") in proc.stderr


def thermal_truth() -> float | None:
    """The hottest CPU/SoC thermal zone, read here (testbed nodes share this machine's /sys)."""
    import glob

    temps, cpu = [], []
    for zone in glob.glob("/sys/class/thermal/thermal_zone*"):
        try:
            kind, temp = Path(zone, "type").read_text().strip(), int(Path(zone, "temp").read_text()) / 1000
        except (OSError, ValueError):
            continue
        temps.append(temp)
        if any(w in kind.lower() for w in ("cpu", "soc", "x86_pkg", "core")):
            cpu.append(temp)
    values = cpu or temps
    return max(values) if values else None


def test_health_columns_in_json_and_table(testbed):
    rc, reports, err = nodes_cli(testbed)
    assert rc == 0, err
    truth = thermal_truth()
    shared = load_cluster(testbed).nodes[0].shared_dir
    fstype = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", shared], capture_output=True,
                            text=True).stdout.strip()
    for r in reports:
        assert (r["temperature"] is None) == (truth is None)
        if truth is not None:
            assert abs(r["temperature"] - truth) < 5
        assert r["throttled"] is None and r["throttle"] == []  # no vcgencmd here
        assert len(r["load"]) == 3 and all(x >= 0 for x in r["load"])
        assert 0 < r["memory_available"] <= r["memory"]
        assert 0 < r["data_dir_free"] <= r["data_dir_total"]
        assert r["shared_state"] in ("mounted", "empty") and r["shared_fs"] == fstype
    proc = subprocess.run([sys.executable, "-m", "workbench", "nodes", "--cluster", str(testbed)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    header = next(line for line in proc.stdout.splitlines() if line.strip().startswith("node "))
    for column in ("°C", "throttled", "load", "mem free", "disk free", "shared"):
        assert column in header
    row = next(line for line in proc.stdout.splitlines() if line.strip().startswith("node1"))
    assert f"({fstype})" in row


@pytest.mark.parametrize("value, flags", [
    ("0x0", []),
    ("0x50005", ["under-voltage", "throttled"]),
    ("0x50000", ["under-voltage since boot", "throttled since boot"]),
    ("0x80008", ["soft temperature limit"]),
])
def test_vcgencmd_throttling_is_read_and_decoded(tmp_path, value, flags):
    """The probe on a board with Raspberry Pi firmware: a vcgencmd on PATH that answers like the real one."""
    from workbench.cluster.probe import HEALTH_SCRIPT, throttle_flags

    tool = tmp_path / "vcgencmd"
    tool.write_text(f'#!/bin/sh\n[ "$1" = get_throttled ] && echo throttled={value}\n')
    tool.chmod(0o755)
    proc = subprocess.run([sys.executable, "-c", HEALTH_SCRIPT, "health"], capture_output=True, text=True,
                          env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    facts = json.loads(proc.stdout)
    assert facts["throttled"] == int(value, 16)
    assert throttle_flags(facts["throttled"]) == flags

