"""A testbed of real nodes on this machine: one network namespace + veth + sshd per node.

Every node gets its own network namespace joined to a bridge in the host namespace by a veth
link, an address in a private /24 (host side ``.1``, nodes ``.11``, ``.12``, …), its own ``sshd``
(generated host key, key authentication only) and its own mount namespace in which the node's
storage directory is bind-mounted at the common ``data_dir`` — so a shard on one node is
really absent on the others. ``testbed_down`` removes namespaces, links, processes and files.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from workbench.cluster.inventory import dump_cluster
from workbench.cluster.processes import terminate
from workbench.errors import ClusterError
from workbench.util.polling import poll

DEFAULT_SUBNET = "auto"  # a 10.77.X.0/24 not in use on this machine
FIRST_NODE = 11
SSHD_CONFIG = """\
ListenAddress {address}
Port 22
HostKey {host_key}
PidFile {pidfile}
AuthorizedKeysFile {authorized_keys}
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {user}
UsePAM no
StrictModes no
MaxStartups 200:30:400
MaxSessions 64
Subsystem sftp internal-sftp
LogLevel INFO
"""


def testbed_dir(cluster_file: str | os.PathLike[str]) -> Path:
    """Where a testbed keeps keys, sshd files and node storage: next to its cluster file."""
    p = Path(cluster_file).resolve()
    return p.parent / f"{p.stem}.testbed"


def testbed_tag(cluster_file: str | os.PathLike[str]) -> str:
    """A short prefix (from the cluster file's path) naming this testbed's namespaces and links."""
    return "wb" + hashlib.sha256(str(Path(cluster_file).resolve()).encode()).hexdigest()[:5]


def node_storage(cluster_file: str | os.PathLike[str], node: str) -> Path:
    """The host path of a testbed node's ``data_dir`` (what the node sees at its ``data_dir``)."""
    return testbed_dir(cluster_file) / "nodes" / node / "data"


def testbed_up(cluster_file: str | os.PathLike[str], nodes: int, *, subnet: str = DEFAULT_SUBNET,
               cores: int = 1) -> Path:
    """Build ``nodes`` nodes and write the cluster file; returns its path."""
    check_can_build()
    cluster_file = Path(cluster_file).resolve()
    root, tag = testbed_dir(cluster_file), testbed_tag(cluster_file)
    if (root / "testbed.json").exists():
        raise ClusterError(f"a testbed is already up for {cluster_file}; run `workbench testbed down --cluster {cluster_file}`")
    if cluster_file.exists():
        raise ClusterError(f"{cluster_file} already exists; `testbed up` writes a new cluster file (choose another path)")
    net = _free_subnet(nodes, start=int(tag[2:], 16)) if subnet == "auto" else _subnet(subnet, nodes)
    _check_subnet_free(net)
    host_ip = str(net.network_address + 1)
    names = [f"node{i + 1}" for i in range(nodes)]
    state: dict[str, Any] = {"tag": tag, "subnet": str(net), "host": host_ip, "bridge": f"{tag}br",
                             "nodes": {n: {"netns": f"{tag}-{n}", "address": str(net.network_address + FIRST_NODE + i)}
                                       for i, n in enumerate(names)}}
    for sub in ("nodes", "mnt/data", "shared"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    _write_state(root, state)
    try:
        _write_keys(root, state)
        _sh("ip", "link", "add", state["bridge"], "type", "bridge")
        _sh("ip", "addr", "add", f"{host_ip}/{net.prefixlen}", "dev", state["bridge"])
        _sh("ip", "link", "set", state["bridge"], "up")
        for i, name in enumerate(names):
            _add_node(root, state, name, f"{tag}h{i + 1}", net.prefixlen)
            start_sshd(cluster_file, name)
        cluster_file.write_text(_cluster_text(root, state, cores))
    except BaseException:
        testbed_down(cluster_file)
        raise
    return cluster_file


def testbed_down(cluster_file: str | os.PathLike[str]) -> list[str]:
    """Stop everything the testbed started and remove it; returns what was removed."""
    cluster_file = Path(cluster_file).resolve()
    root, tag = testbed_dir(cluster_file), testbed_tag(cluster_file)
    if not root.exists() and not _namespaces(tag):
        raise ClusterError(f"no testbed is up for {cluster_file}")
    removed: list[str] = []
    from workbench.cluster.daskcluster import cluster_down, is_up, logs_dir, state_path
    from workbench.cluster.tls import tls_dir

    if cluster_file.exists() and is_up(cluster_file):
        try:
            cluster_down(cluster_file)
        except ClusterError:  # a node's sshd is gone: its workers die with its namespace below
            pass
        removed.append("dask cluster")
    for ns in _namespaces(tag):
        _kill_namespace(ns)
        _sh("ip", "netns", "del", ns, check=False)
        removed.append(f"netns {ns}")
    if _link_exists(f"{tag}br"):
        _sh("ip", "link", "del", f"{tag}br", check=False)
        removed.append(f"bridge {tag}br")
    if root.exists():
        shutil.rmtree(root)
        removed.append(str(root))
    for path in (logs_dir(cluster_file), state_path(cluster_file), tls_dir(cluster_file)):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    if cluster_file.exists():
        cluster_file.unlink()
        removed.append(str(cluster_file))
    leftovers = _namespaces(tag) + ([f"{tag}br"] if _link_exists(f"{tag}br") else [])
    if leftovers:
        raise ClusterError(f"testbed down left {', '.join(leftovers)} behind")
    return removed


def start_sshd(cluster_file: str | os.PathLike[str], node: str) -> int:
    """(Re)start a node's sshd inside its namespaces; returns its pid."""
    root = testbed_dir(cluster_file)
    state = _read_state(root)
    info = state["nodes"][node]
    ndir = root / "nodes" / node
    pidfile = ndir / "sshd.pid"
    pidfile.unlink(missing_ok=True)
    script = 'mount --bind "$1" "$2" && exec "$3" -f "$4" -E "$5"'
    _sh("ip", "netns", "exec", info["netns"], "unshare", "--mount", "--propagation", "private",
        "sh", "-c", script, "sh", str(ndir / "data"), str(root / "mnt" / "data"), _sshd(),
        str(ndir / "sshd_config"), str(ndir / "sshd.log"))
    pid = poll(lambda: int(text) if pidfile.exists() and (text := pidfile.read_text().strip()) else None,
               timeout=10, interval=0.02)
    if pid is not None:
        return pid
    raise ClusterError(f"sshd of testbed node {node!r} did not start (see {ndir / 'sshd.log'})")


def stop_node(cluster_file: str | os.PathLike[str], node: str) -> None:
    """Stop every process of a node (its sshd and whatever runs in its sessions); the node stays."""
    _kill_namespace(_read_state(testbed_dir(cluster_file))["nodes"][node]["netns"])


def start_engine_proxy(cluster_file: str | os.PathLike[str], node: str, *, port: int = 2375,
                       socket_path: str = "/var/run/docker.sock") -> str:
    """Give a node a Docker engine of its own address: this machine's engine, forwarded by a process
    in the node's namespace (``workbench.testing.engine_proxy``), which ``stop_node`` kills. Returns its URL
    (at once when it is already forwarding)."""
    import socket

    info = _read_state(testbed_dir(cluster_file))["nodes"][node]
    url = f"tcp://{info['address']}:{port}"
    try:
        socket.create_connection((info["address"], port), timeout=2).close()
        return url  # already forwarding
    except OSError:
        pass
    proc = subprocess.Popen(["ip", "netns", "exec", info["netns"], sys.executable, "-m", "workbench.testing.engine_proxy",
                             info["address"], str(port), socket_path],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        proc.kill()
        raise ClusterError(f"the engine proxy of testbed node {node!r} did not start")
    proc.stdout.close()
    return url


def check_can_build() -> None:
    """Raise a clear ``ClusterError`` unless this process can build a testbed."""
    if os.geteuid() != 0:
        raise ClusterError("the testbed needs root (it creates network namespaces, links and sshd processes)")
    for tool in ("ip", "unshare", "mount"):
        if shutil.which(tool) is None:
            raise ClusterError(f"the testbed needs `{tool}` (install iproute2 / util-linux)")
    _sshd()


# -- pieces ------------------------------------------------------------------------------
def _add_node(root: Path, state: dict[str, Any], name: str, host_veth: str, prefix: int) -> None:
    info, ns = state["nodes"][name], state["nodes"][name]["netns"]
    _sh("ip", "netns", "add", ns)
    _sh("ip", "link", "add", host_veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
    _sh("ip", "link", "set", host_veth, "master", state["bridge"], "up")
    _sh("ip", "-n", ns, "addr", "add", f"{info['address']}/{prefix}", "dev", "eth0")
    _sh("ip", "-n", ns, "link", "set", "eth0", "up")
    _sh("ip", "-n", ns, "link", "set", "lo", "up")
    ndir = root / "nodes" / name
    (ndir / "data").mkdir(parents=True, exist_ok=True)
    (ndir / "sshd_config").write_text(SSHD_CONFIG.format(
        address=info["address"], host_key=ndir / "ssh_host_ed25519_key", pidfile=ndir / "sshd.pid",
        authorized_keys=root / "authorized_keys", user=_user()))
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory


def _write_keys(root: Path, state: dict[str, Any]) -> None:
    import asyncssh

    client = asyncssh.generate_private_key("ssh-ed25519", comment="workbench-testbed")
    client.write_private_key(str(root / "id_ed25519"))
    os.chmod(root / "id_ed25519", 0o600)
    (root / "authorized_keys").write_bytes(client.export_public_key())
    known = []
    for name, info in state["nodes"].items():
        key = asyncssh.generate_private_key("ssh-ed25519", comment=name)
        path = root / "nodes" / name / "ssh_host_ed25519_key"
        path.parent.mkdir(parents=True, exist_ok=True)
        key.write_private_key(str(path))
        os.chmod(path, 0o600)
        algorithm, blob = key.export_public_key().decode().split()[:2]
        known.append(f"{info['address']} {algorithm} {blob}\n")
    (root / "known_hosts").write_text("".join(known))


def _node_python(root: Path) -> Path:
    """The nodes' Python: this one, importing this very workbench (so nodes run the coordinator's code)."""
    import workbench

    source = Path(workbench.__file__).resolve().parent.parent
    path = root / "python"
    path.write_text(f'#!/bin/sh\nPYTHONPATH={shlex.quote(str(source))}${{PYTHONPATH:+:$PYTHONPATH}} '
                    f'exec {shlex.quote(sys.executable)} "$@"\n')
    path.chmod(0o755)
    return path


def _cluster_text(root: Path, state: dict[str, Any], cores: int) -> str:
    head = {"coordinator": state["host"], "known_hosts": str(root / "known_hosts"), "scheduler_port": 0,
            "connect_timeout": 5.0, "user": _user(), "key": str(root / "id_ed25519"),
            "data_dir": str(root / "mnt" / "data"), "shared_dir": str(root / "shared"),
            "python": str(_node_python(root))}
    nodes = [{"name": n, "host": info["address"], "cores": cores, "labels": ["testbed"]}
             for n, info in state["nodes"].items()]
    return "# written by `workbench testbed up`; removed by `workbench testbed down`\n" + dump_cluster(head, nodes)


def _subnet(text: str, nodes: int) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise ClusterError(f"--subnet {text!r} is not an IPv4 network: {exc}") from None
    if not net.is_private:
        raise ClusterError(f"--subnet {text} is not a private network")
    if nodes < 1:
        raise ClusterError("a testbed needs at least one node")
    if FIRST_NODE + nodes >= net.num_addresses - 1:
        raise ClusterError(f"--subnet {text} has room for {max(net.num_addresses - FIRST_NODE - 2, 0)} nodes, not {nodes}")
    return net


def _free_subnet(nodes: int, start: int) -> ipaddress.IPv4Network:
    """The first free 10.77.X.0/24 from X = start (testbeds of different files rarely race for one)."""
    used = [net for _, net in _host_networks()]
    for i in range(256):
        net = _subnet(f"10.77.{(start + i) % 256}.0/24", nodes)
        if not any(net.overlaps(u) for u in used):
            return net
    raise ClusterError("no free 10.77.X.0/24 subnet on this machine; pass --subnet")


def _host_networks() -> list[tuple[str, ipaddress.IPv4Network]]:
    """(interface, network) for every IPv4 address in this network namespace."""
    found = []
    for line in _sh("ip", "-o", "-4", "addr", "show").splitlines():
        parts = line.split()
        if "inet" in parts:
            found.append((parts[1], ipaddress.IPv4Interface(parts[parts.index("inet") + 1]).network))
    return found


def _check_subnet_free(net: ipaddress.IPv4Network) -> None:
    for dev, used in _host_networks():
        if used.overlaps(net):
            raise ClusterError(f"subnet {net} is already in use on this machine ({dev}); pass another --subnet")


def _namespaces(tag: str) -> list[str]:
    out = _sh("ip", "netns", "list", check=False)
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"{tag}-")]


def _kill_namespace(ns: str) -> None:
    """Terminate every process in a network namespace (TERM, then KILL)."""
    terminate([int(p) for p in _sh("ip", "netns", "pids", ns, check=False).split()], wait=3.0)


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def _sshd() -> str:
    path = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
    if path is None:
        raise ClusterError("the testbed needs OpenSSH's sshd (install openssh-server)")
    return path


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def read_testbed(cluster_file: str | os.PathLike[str]) -> dict[str, Any]:
    """What ``testbed_up`` recorded: tag, subnet, host address, bridge, per node netns and address."""
    return _read_state(testbed_dir(cluster_file))


def _read_state(root: Path) -> dict[str, Any]:
    try:
        return json.loads((root / "testbed.json").read_text())
    except FileNotFoundError:
        raise ClusterError(f"no testbed at {root}") from None


def _write_state(root: Path, state: dict[str, Any]) -> None:
    (root / "testbed.json").write_text(json.dumps(state, indent=1) + "\n")


def _sh(*argv: str, check: bool = True) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise ClusterError(f"`{' '.join(argv[:4])} …` failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout

