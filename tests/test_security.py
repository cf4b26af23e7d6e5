"""A dataset stays inside its directory and corruption is caught: adversarial manifests, changed shards.

Every case runs the real command line and checks its exit status and its one ``error:`` line, and
that nothing ran (no output).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import workbench as wb
from tests.helpers import gnu_grep, shard_files
from workbench.cli import main
from workbench.cluster.identity import cluster_id
from workbench.cluster.inventory import dump_cluster, load_cluster


@pytest.fixture
def run_cli(capsysbinary):
    def run(*args: str) -> tuple[int, bytes, str]:
        code = main([str(a) for a in args])
        out, err = capsysbinary.readouterr()
        return code, out, err.decode()

    return run


@pytest.fixture
def ds(nci_dataset, tmp_path) -> Path:
    copy = tmp_path / "ds"
    shutil.copytree(nci_dataset.directory, copy)
    return copy


@pytest.fixture
def secret(tmp_path) -> Path:
    """A file outside the dataset that must never be read through it."""
    path = tmp_path / "secret.tsv"
    path.write_text("1\tC-SECRET\n")
    return path


def edit_manifest(ds: Path, change) -> dict:
    manifest = json.loads((ds / "manifest.json").read_text())
    change(manifest)
    (ds / "manifest.json").write_text(json.dumps(manifest))
    return manifest


def first_shard(ds: Path) -> dict:
    return json.loads((ds / "manifest.json").read_text())["shards"][0]


def fake_cluster(tmp_path: Path) -> Path:
    """A cluster file whose node is never reached (loopback, closed port): checks must refuse first."""
    path = tmp_path / "cluster.toml"
    path.write_text(dump_cluster({"coordinator": "127.0.0.1", "known_hosts": "known_hosts", "key": "id",
                                  "data_dir": "/srv/workbench", "connect_timeout": 2.0},
                                 [{"name": "node1", "host": "127.0.0.1", "port": 1}]))
    return path


def placed_for(ds: Path, cluster_file: Path, **roots: str) -> None:
    """Record a placement on the fake cluster (its id right) with these node roots."""
    names = [s["name"] for s in json.loads((ds / "manifest.json").read_text())["shards"]]
    edit_manifest(ds, lambda m: m.update(placement={
        "mode": "local", "cluster": str(cluster_file), "cluster_id": cluster_id(load_cluster(cluster_file)),
        "replicas": 1, "dataset_id": "ds-1", "roots": roots, "shards": {n: ["node1"] for n in names}}))


def refused(result: tuple[int, bytes, str], line: str) -> None:
    code, out, err = result
    assert (code, err, out) == (2, f"error: {line}\n", b"")


# -- shards ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path,why", [
    ("/etc/os-release", "path '/etc/os-release' is absolute; a manifest may only name files inside the dataset (refused)"),
    ("../../../etc/os-release", "path '../../../etc/os-release' leads out of the dataset with '..' (refused)"),
    ("shards/../../outside.tsv", "path 'shards/../../outside.tsv' leads out of the dataset with '..' (refused)"),
])
def test_shard_path_out_of_the_dataset_is_refused(ds, run_cli, path, why):
    name = first_shard(ds)["name"]
    edit_manifest(ds, lambda m: m["shards"][0].update(path=path))
    refused(run_cli("grep", "C", "-d", ds), f"shard {name}: {why}")


def test_shard_symlink_out_of_the_dataset_is_refused(ds, run_cli, secret):
    shard = first_shard(ds)
    (ds / shard["path"]).unlink()
    (ds / shard["path"]).symlink_to(secret)
    refused(run_cli("grep", "C", "-d", ds),
            f"shard {shard['name']}: {shard['path']} is a symbolic link leading out of the dataset (to {secret}; refused)")


def test_shards_directory_symlinked_out_is_refused(ds, run_cli, tmp_path):
    shard = first_shard(ds)
    elsewhere = tmp_path / "elsewhere"
    (ds / "shards").rename(elsewhere)
    (ds / "shards").symlink_to(elsewhere)
    refused(run_cli("grep", "C", "-d", ds), f"shard {shard['name']}: {shard['path']} is a symbolic link leading out "
                                           f"of the dataset (to {elsewhere / Path(shard['path']).name}; refused)")


def test_a_symlink_inside_the_dataset_is_fine(ds, run_cli):
    shard = first_shard(ds)
    moved = ds / "moved.tsv"
    (ds / shard["path"]).rename(moved)
    (ds / shard["path"]).symlink_to(moved)
    code, out, err = run_cli("grep", "-F", "C(=O)N", "-d", ds)
    assert (code, err) == (0, "")
    assert sorted(out.splitlines()) == gnu_grep([moved] + shard_files(ds)[1:], "-F", "-e", "C(=O)N")


# -- index files -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../secret", "/etc/os-release", "a/../../b"])
def test_shard_names_leading_index_files_out_are_refused(ds, run_cli, name):
    edit_manifest(ds, lambda m: m["shards"][0].update(name=name))
    refused(run_cli("substructure", "c1ccccc1", "-d", ds), f"shard {name!r}: a shard name must be a plain file name (refused)")


def test_index_file_symlink_out_is_refused(ds, run_cli, secret):
    name = first_shard(ds)["name"]
    (ds / "index").mkdir()
    (ds / "index" / f"{name}.arrow").symlink_to(secret)
    refused(run_cli("substructure", "c1ccccc1", "-d", ds),
            f"shard {name} (index file): index/{name}.arrow is a symbolic link leading out of the dataset "
            f"(to {secret}; refused)")


def test_index_directory_symlinked_out_is_refused(ds, run_cli, tmp_path):
    name = first_shard(ds)["name"]
    (tmp_path / "their-index").mkdir()
    (ds / "index").symlink_to(tmp_path / "their-index")
    refused(run_cli("substructure", "c1ccccc1", "-d", ds),
            f"shard {name} (index file): index/{name}.arrow is a symbolic link leading out of the dataset "
            f"(to {tmp_path / 'their-index' / (name + '.arrow')}; refused)")


# -- placement -------------------------------------------------------------------------------
@pytest.mark.parametrize("root", ["../../etc", "/srv/workbench/../../etc", "srv/workbench/ds"])
def test_placement_root_that_is_not_a_plain_absolute_path_is_refused(ds, run_cli, tmp_path, root):
    placed_for(ds, fake_cluster(tmp_path), node1=root)
    refused(run_cli("info", "-d", ds), f"placement: node 'node1' root {root!r} is not a plain absolute path (refused)")


def test_placement_dataset_id_leading_out_is_refused(ds, run_cli, tmp_path):
    placed_for(ds, fake_cluster(tmp_path), node1="/srv/workbench/ds-1")
    edit_manifest(ds, lambda m: m["placement"].update(dataset_id="../../etc"))
    refused(run_cli("info", "-d", ds), "placement: dataset id '../../etc' is not a plain directory name (refused)")


@pytest.mark.parametrize("root", ["/etc", "/srv/workbench", "/srv/workbenchX/ds"])
def test_placement_root_outside_the_nodes_data_dir_is_refused(ds, run_cli, tmp_path, root):
    cluster = fake_cluster(tmp_path)
    placed_for(ds, cluster, node1=root)
    refused(run_cli("verify", "-d", ds, "--cluster", cluster),
            f"placement: node 'node1' root {root!r} is outside its data_dir /srv/workbench (refused)")


def test_placement_for_another_cluster_is_refused(ds, run_cli, tmp_path):
    cluster = fake_cluster(tmp_path)
    placed_for(ds, cluster, node1="/srv/workbench/ds-1")
    (tmp_path / "other").mkdir()
    other = tmp_path / "other" / "cluster.toml"
    other.write_text(cluster.read_text())  # the same nodes, another cluster file
    refused(run_cli("verify", "-d", ds, "--cluster", other),
            f"the dataset is not placed on this cluster: run workbench place --dataset {ds} --cluster {other} "
            f"(its placement is for {cluster}, or the nodes changed)")


def test_place_never_reads_outside_the_dataset(ds, run_cli, tmp_path, secret):
    shard = first_shard(ds)
    (ds / shard["path"]).unlink()
    (ds / shard["path"]).symlink_to(secret)
    refused(run_cli("place", "-d", ds, "--cluster", fake_cluster(tmp_path)),
            f"shard {shard['name']}: {shard['path']} is a symbolic link leading out of the dataset (to {secret}; refused)")


# -- sizes before every run, digests with `verify` -------------------------------------------
def test_a_shard_of_another_size_is_refused_before_running(ds, run_cli):
    shard = first_shard(ds)
    with open(ds / shard["path"], "ab") as fh:
        fh.write(b"1\tC\n")
    refused(run_cli("grep", "C", "-d", ds),
            f"shard {shard['name']}: {shard['path']} is {shard['bytes'] + 4:,} bytes but the manifest says "
            f"{shard['bytes']:,} (changed or corrupted); run `workbench verify --dataset {ds}` or re-ingest the dataset")


def test_a_missing_shard_is_refused_before_running(ds, run_cli):
    shard = first_shard(ds)
    (ds / shard["path"]).unlink()
    refused(run_cli("substructure", "C", "-d", ds), f"shard {shard['name']}: {shard['path']} is missing; "
                                                     f"run `workbench verify --dataset {ds}` or re-ingest the dataset")


def test_verify_intact_then_a_flipped_byte(ds, run_cli):
    code, out, err = run_cli("verify", "-d", ds)
    n = len(shard_files(ds))
    assert (code, out, err) == (0, b"", f"verified the sha256 of {n} files here: all intact\n")
    shard = first_shard(ds)
    data = bytearray((ds / shard["path"]).read_bytes())
    data[10] ^= 0x01
    (ds / shard["path"]).write_bytes(bytes(data))
    code, out, err = run_cli("verify", "-d", ds)
    assert (code, out, err) == (1, f"{shard['name']}\tlocal\t{shard['path']}\tsha256 mismatch\n".encode(),
                                f"verified the sha256 of {n} files here: 1 bad (listed on stdout)\n")
    code, out, _ = run_cli("verify", "-d", ds, "--json")
    report = json.loads(out)
    assert code == 1 and report["intact"] is False
    assert report["problems"] == [{"shard": shard["name"], "file": shard["path"], "problem": "sha256 mismatch", "node": None}]


def test_verify_checks_index_files_by_their_recorded_digest(tmp_path, nci_smi, run_cli):
    src = tmp_path / "few.smi"
    src.write_text("".join(nci_smi.read_text().splitlines(keepends=True)[:300]))
    ds = wb.ingest([src], tmp_path / "few", shard_size="8kB")
    ds.build_index()
    assert run_cli("verify", "-d", ds.directory)[0] == 0
    shard = ds.manifest.shards[1]
    index = ds.directory / shard.index_path
    data = bytearray(index.read_bytes())
    data[len(data) // 2] ^= 0xFF
    index.write_bytes(bytes(data))
    code, out, _ = run_cli("verify", "-d", ds.directory)
    assert (code, out) == (1, f"{shard.name}\tlocal\t{shard.index_path}\tsha256 mismatch\n".encode())


def test_exit_status_and_one_line_from_the_console_script(ds):
    shard = first_shard(ds)
    edit_manifest(ds, lambda m: m["shards"][0].update(path="/etc/os-release"))
    proc = subprocess.run([sys.executable, "-m", "workbench", "grep", "C", "-d", str(ds)], capture_output=True, text=True)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (f"error: shard {shard['name']}: path '/etc/os-release' is absolute; a manifest may only name "
                           "files inside the dataset (refused)\n")
