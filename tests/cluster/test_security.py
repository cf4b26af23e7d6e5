"""On the testbed: the cluster admits only its own members (mutual TLS), copies are verified on the
nodes, node-side symlinks out of the dataset are refused, and a placement belongs to one cluster."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import subprocess
import sys

import pytest

from tests.cluster.conftest import cluster_variant, node_file
from tests.helpers import gnu_grep, shard_files
from workbench.cluster.daskcluster import _client, scheduler_address
from workbench.cluster.placement import place
from workbench.cluster.tls import client_security, member, tls_dir
from workbench.errors import JobError
from workbench.testing.testbed import node_storage

pytestmark = pytest.mark.ssh
WB = [sys.executable, "-m", "workbench"]


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_cluster_speaks_only_mutual_tls(dask_cluster):
    address = scheduler_address(str(dask_cluster))
    assert address.startswith("tls://")
    with _client(address, 10, client_security(dask_cluster)) as client:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    assert workers and all(w.startswith("tls://") for w in workers)
    d = tls_dir(dask_cluster)
    assert mode(d) == 0o700
    keys = sorted(d.glob("*-key.pem"))
    assert {k.name for k in keys} == {"scheduler-key.pem", "client-key.pem", "node-node1-key.pem",
                                      "node-node2-key.pem", "node-node3-key.pem"}  # never the CA's
    assert all(mode(k) == 0o600 for k in keys)
    for node in ("node1", "node2", "node3"):
        there = node_storage(dask_cluster, node) / ".workbench" / "tls"
        assert mode(there) == 0o700
        assert {p.name: mode(p) for p in there.iterdir()} == {"ca.pem": 0o600, "node.pem": 0o600, "node-key.pem": 0o600}


def test_a_client_without_the_certificate_is_refused(dask_cluster, tmp_path):
    from distributed import Client, Security

    address = scheduler_address(str(dask_cluster))
    host, port = address.removeprefix("tls://").rsplit(":", 1)
    with pytest.raises((OSError, TimeoutError)):  # plain tcp:// to the TLS listener
        Client(f"tcp://{host}:{port}", timeout=3, set_as_default=False)
    with pytest.raises((OSError, TimeoutError)):  # TLS with another CA's certificate
        Client(address, timeout=3, set_as_default=False, security=Security.temporary())
    # TLS that trusts the scheduler but shows no certificate (or a foreign one): the scheduler refuses
    foreign = Security.temporary()
    (tmp_path / "foreign.pem").write_text(foreign.tls_client_cert)
    (tmp_path / "foreign-key.pem").write_text(foreign.tls_client_key)
    for chain in (None, (tmp_path / "foreign.pem", tmp_path / "foreign-key.pem")):
        ctx = ssl.create_default_context(cafile=str(member(dask_cluster, "client").ca))
        ctx.check_hostname = False
        if chain:
            ctx.load_cert_chain(*chain)
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            with pytest.raises((ssl.SSLError, ConnectionError)):
                with ctx.wrap_socket(raw) as tls:
                    tls.sendall(b"\0" * 8)
                    if not tls.recv(1):  # TLS 1.3: the refusal arrives after the handshake
                        raise ConnectionError("closed by the scheduler")


def test_an_external_tls_scheduler_takes_certificate_files_or_dask_config(placed, dask_cluster):
    client = member(dask_cluster, "client")
    address = scheduler_address(str(dask_cluster))
    expected = gnu_grep(shard_files(placed.directory), "-F", "-e", "C(=O)N")
    options = ["--tls-ca-file", client.ca, "--tls-cert", client.cert, "--tls-key", client.key]
    proc = subprocess.run([*WB, "grep", "-F", "C(=O)N", "-d", placed.directory, "--backend", "dask",
                           "--scheduler", address, *map(str, options)], capture_output=True, timeout=300)
    assert (proc.returncode, proc.stderr) == (0, b"")
    assert sorted(proc.stdout.splitlines()) == expected
    config = {"DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(client.ca),
              "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": str(client.cert),
              "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": str(client.key)}
    proc = subprocess.run([*WB, "grep", "-F", "C(=O)N", "-c", "-d", placed.directory, "--backend", "dask",
                           "--scheduler", address], capture_output=True, timeout=300, env={**os.environ, **config})
    assert (proc.returncode, proc.stdout) == (0, f"{len(expected)}\n".encode())


def test_verify_hashes_every_copy_on_its_node(testbed, placed, tmp_path):
    def verify() -> subprocess.CompletedProcess:
        return subprocess.run([*WB, "verify", "-d", str(placed.directory), "--cluster", str(testbed)],
                              capture_output=True, text=True, timeout=300)

    shards = placed.manifest.shards
    copies = sum(len(placed.manifest.placement["shards"][s.name]) for s in shards)
    proc = verify()
    assert (proc.returncode, proc.stdout) == (0, "")
    assert proc.stderr == f"verified the sha256 of {len(shards)} files here and {copies} copies on 3 nodes: all intact\n"
    flipped, linked = shards[0], shards[1]
    flip_node = placed.manifest.placement["shards"][flipped.name][0]
    link_node = placed.manifest.placement["shards"][linked.name][1]
    copy = node_file(testbed, flip_node, placed, flipped.path)
    data = bytearray(copy.read_bytes())
    data[5] ^= 1
    copy.write_bytes(bytes(data))
    secret = tmp_path / "secret.tsv"
    secret.write_bytes(node_file(testbed, link_node, placed, linked.path).read_bytes())  # same bytes, outside
    node_file(testbed, link_node, placed, linked.path).unlink()
    node_file(testbed, link_node, placed, linked.path).symlink_to(secret)
    try:
        proc = verify()
        root = placed.manifest.placement["roots"]
        assert proc.returncode == 1, proc.stderr
        assert sorted(proc.stdout.splitlines()) == sorted([
            f"{flipped.name}\t{flip_node}\t{root[flip_node]}/{flipped.path}\tsha256 mismatch",
            f"{linked.name}\t{link_node}\t{root[link_node]}/{linked.path}\tleads out of the node's dataset directory "
            "(symbolic link; refused)"])
    finally:
        assert sum(r.copied for r in place(placed.directory, testbed, "local", replicas=2)) == 2
    assert verify().returncode == 0


def test_a_node_copy_linked_out_of_the_dataset_is_never_read(placed, dask_cluster, tmp_path):
    victim = placed.manifest.shards[2]
    secret = tmp_path / "secret.tsv"
    secret.write_text("1\tC(=O)N-SECRET\n")
    for node in placed.manifest.placement["shards"][victim.name]:
        node_file(dask_cluster, node, placed, victim.path).unlink()
        node_file(dask_cluster, node, placed, victim.path).symlink_to(secret)
    try:
        with pytest.raises(JobError, match=f"shard {victim.name} failed: {victim.path} on node. is a symbolic link "
                                           f"leading out of "):
            placed.grep("C(=O)N", fixed=True, backend="dask", cluster=str(dask_cluster))
    finally:
        place(placed.directory, dask_cluster, "local", replicas=2)


def test_a_placement_is_for_one_cluster(testbed, placed, tmp_path):
    twin = cluster_variant(testbed, tmp_path / "twin.toml")  # the same nodes, another cluster file
    proc = subprocess.run([*WB, "verify", "-d", str(placed.directory), "--cluster", str(twin)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: the dataset is not placed on this cluster: run workbench place "
                                  f"--dataset {placed.directory} --cluster {twin} ")
    assert proc.stderr.count("\n") == 1
