"""The cluster file: a TOML inventory of nodes, the coordinator and the cluster's known_hosts.

    [cluster]
    coordinator = "10.0.0.1"          # address the nodes use to reach the Dask scheduler
    known_hosts = "known_hosts"       # relative paths are relative to this file
    user = "pi"                       # defaults for every node (each may override)
    key = "id_ed25519"
    data_dir = "/srv/workbench"
    python = "/opt/workbench/bin/python"

    [[nodes]]
    name = "pi1"
    host = "10.0.0.11"
    cores = "auto"
    shared_dir = "/mnt/nfs/workbench"
    docker = "tcp://10.0.0.11:2375"
    labels = ["pi4"]

Loading validates everything up front and raises ``ClusterError`` naming the offending entry.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import ClusterError

NODE_KEYS = {"name", "host", "user", "port", "key", "cores", "data_dir", "shared_dir", "docker", "labels", "python"}
CLUSTER_KEYS = {"coordinator", "known_hosts", "scheduler_port", "connect_timeout", "concurrency",
                "user", "port", "key", "data_dir", "shared_dir", "python", "cores"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class Node:
    """One machine of the cluster, as the coordinator reaches it over SSH."""

    name: str
    host: str
    user: str
    port: int
    key: Path
    cores: int | None  # None: as many as the node reports
    data_dir: str
    python: str = "python3"
    shared_dir: str | None = None
    docker: str | None = None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cluster:
    """A loaded, validated cluster file."""

    path: Path
    coordinator: str
    known_hosts: Path
    nodes: tuple[Node, ...]
    scheduler_port: int = 8786
    connect_timeout: float = 10.0
    concurrency: int = 32  # SSH connections open at once (probing, placement, start-up)
    extra: dict[str, Any] = field(default_factory=dict)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise ClusterError(f"no node named {name!r} in {self.path}")


def load_cluster(path: str | os.PathLike[str]) -> Cluster:
    """Read and validate a cluster file."""
    path = Path(path).resolve()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ClusterError(f"cluster file {str(path)!r} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ClusterError(f"cannot read cluster file {path}: {exc}") from None
    unknown = set(data) - {"cluster", "nodes"}
    if unknown:
        raise ClusterError(f"{path}: unknown section(s) {', '.join(sorted(unknown))} (expected [cluster] and [[nodes]])")
    head = _table(data.get("cluster", {}), "[cluster]", CLUSTER_KEYS, path)
    raw_nodes = data.get("nodes")
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise ClusterError(f"{path}: no [[nodes]] entries")
    base = path.parent
    nodes = tuple(_node(_table(n, f"node #{i + 1}", NODE_KEYS, path), head, base, path) for i, n in enumerate(raw_nodes))
    seen: set[str] = set()
    for n in nodes:
        if n.name in seen:
            raise ClusterError(f"{path}: node name {n.name!r} is used twice")
        seen.add(n.name)
    if "coordinator" not in head:
        raise ClusterError(f"{path}: [cluster] needs `coordinator` (the address nodes use to reach the scheduler)")
    if "known_hosts" not in head:
        raise ClusterError(f"{path}: [cluster] needs `known_hosts` (host keys are always verified)")
    return Cluster(
        path=path,
        coordinator=_str(head["coordinator"], "coordinator", path),
        known_hosts=_path(head["known_hosts"], base),
        nodes=nodes,
        scheduler_port=_int(head.get("scheduler_port", 8786), "scheduler_port", path, 0, 65535),
        connect_timeout=_positive(head.get("connect_timeout", 10.0), "connect_timeout", path),
        concurrency=_int(head.get("concurrency", 32), "concurrency", path, 1, 10_000),
    )


def _node(d: dict[str, Any], head: dict[str, Any], base: Path, path: Path) -> Node:
    def get(key: str, default: Any = None) -> Any:
        return d.get(key, head.get(key, default))

    name = _str(d.get("name"), "name", path)
    if not NAME_RE.match(name):
        raise ClusterError(f"{path}: node name {name!r} must be letters, digits, '.', '_' or '-'")
    where = f"node {name!r}"
    key = get("key")
    if key is None:
        raise ClusterError(f"{path}: {where} has no SSH `key` (key authentication only)")
    data_dir = get("data_dir")
    if data_dir is None:
        raise ClusterError(f"{path}: {where} has no `data_dir`")
    cores = get("cores", "auto")
    if cores != "auto":
        cores = _int(cores, f"{where} cores", path, 1, 100_000)
    labels = get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ClusterError(f"{path}: {where} labels must be a list of strings")
    return Node(
        name=name,
        host=_str(d.get("host"), f"{where} host", path),
        user=_str(get("user", "root"), f"{where} user", path),
        port=_int(get("port", 22), f"{where} port", path, 1, 65535),
        key=_path(_str(key, f"{where} key", path), base),
        cores=None if cores == "auto" else cores,
        data_dir=_abs(get("data_dir"), f"{where} data_dir", path),
        python=_str(get("python", "python3"), f"{where} python", path),
        shared_dir=_abs(get("shared_dir"), f"{where} shared_dir", path) if get("shared_dir") else None,
        docker=_str(d["docker"], f"{where} docker", path) if d.get("docker") else None,
        labels=tuple(labels),
    )


def _table(value: Any, where: str, allowed: set[str], path: Path) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ClusterError(f"{path}: {where} must be a table")
    unknown = set(value) - allowed
    if unknown:
        raise ClusterError(f"{path}: {where} has unknown key(s) {', '.join(sorted(unknown))}")
    return value


def _str(value: Any, what: str, path: Path) -> str:
    if not isinstance(value, str) or not value:
        raise ClusterError(f"{path}: {what} must be a non-empty string")
    return value


def _int(value: Any, what: str, path: Path, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ClusterError(f"{path}: {what} must be an integer in {lo}..{hi}, not {value!r}")
    return value


def _positive(value: Any, what: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ClusterError(f"{path}: {what} must be a positive number, not {value!r}")
    return float(value)


def _abs(value: Any, what: str, path: Path) -> str:
    value = _str(value, what, path)
    if not value.startswith("/"):
        raise ClusterError(f"{path}: {what} must be an absolute path on the node, not {value!r}")
    return value.rstrip("/") or "/"


def _path(value: str, base: Path) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def toml_value(value: Any) -> str:
    """A TOML literal for a str/int/float/bool/list (enough to write cluster files)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def dump_cluster(head: dict[str, Any], nodes: list[dict[str, Any]]) -> str:
    """The text of a cluster file for these settings."""
    lines = ["[cluster]", *(f"{k} = {toml_value(v)}" for k, v in head.items() if v is not None)]
    for n in nodes:
        lines += ["", "[[nodes]]", *(f"{k} = {toml_value(v)}" for k, v in n.items() if v is not None)]
    return "\n".join(lines) + "\n"
