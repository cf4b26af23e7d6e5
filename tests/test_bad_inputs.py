"""The bad-input catalogue: every command refuses bad input with exit 2 and one ``error:`` line,
writes nothing to stdout, and leaves nothing behind.

Each case is (command line, the exact error line). ``{W}`` is the directory the cases run in,
holding a good dataset ``DS``, broken datasets and cluster files (built once, checked unchanged).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import workbench as wb
from workbench.cli import main

WB = [sys.executable, "-m", "workbench"]
CLUSTER = '[cluster]\ncoordinator = "127.0.0.1"\nknown_hosts = "kh"\nkey = "k"\ndata_dir = "/srv"\n'
NODE = '[[nodes]]\nname = "n1"\nhost = "127.0.0.1"\nport = 1\n'


@pytest.fixture(scope="module")
def world(tmp_path_factory, nci_smi) -> Path:
    w = tmp_path_factory.mktemp("bad-inputs")
    (w / "few.smi").write_text("".join(nci_smi.read_text().splitlines(keepends=True)[:300]))
    wb.ingest([w / "few.smi"], w / "DS", shard_size="8kB")
    manifest = json.loads((w / "DS" / "manifest.json").read_text())

    def broken(name: str, text: str | None = None, change=None) -> None:
        shutil.copytree(w / "DS", w / name)
        if change is not None:
            m = json.loads(json.dumps(manifest))
            change(m)
            text = json.dumps(m)
        if text is not None:
            (w / name / "manifest.json").write_text(text)

    broken("newer", change=lambda m: m.update(version=2))
    broken("foreign", change=lambda m: m.update(format="something-else"))
    broken("noshards", change=lambda m: m.pop("shards"))
    broken("badjson", text="{")
    broken("list", text="[]")
    broken("badindex", change=lambda m: m.update(index=["x"]))
    broken("missing")
    os.unlink(w / "missing" / manifest["shards"][1]["path"])
    (w / "empty").mkdir()
    (w / "cut.smi.gz").write_bytes(gzip.compress(nci_smi.read_bytes())[:5000])
    (w / "c.toml").write_text(CLUSTER + NODE)
    (w / "syntax.toml").write_text("[cluster\n")
    (w / "nonodes.toml").write_text(CLUSTER)
    (w / "unknown.toml").write_text(CLUSTER + "colour = 1\n" + NODE)
    (w / "relative.toml").write_text(CLUSTER.replace('"/srv"', '"srv"') + NODE)
    (w / "twice.toml").write_text(CLUSTER + NODE + NODE)
    (w / "port.toml").write_text(CLUSTER + NODE.replace("port = 1", "port = 70000"))
    (w / "job.toml").write_text("command = 'not a list'\n")
    return w


def tree(path: Path) -> dict[str, int]:
    return {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*")) if not p.is_symlink()}


S1 = "shards/shard-00001.tsv"
CASES = [
    # grep: patterns, options, backends
    (["grep", "C(", "-E", "-d", "DS"], "invalid pattern 'C(': grep: Unmatched ( or \\("),
    (["grep", "[", "-d", "DS"], "invalid pattern '[': grep: Invalid regular expression"),
    (["grep", "C", "-d", "DS", "--engine", "nope"], "unknown grep engine 'nope' (choose from auto, gnu, ripgrep, busybox)"),
    (["grep", "C", "-d", "DS", "--workers", "0"], "Invalid value for '--workers' / '-w': 0 is not in the range x>=1."),
    (["grep", "C", "-d", "DS", "--workers", "many"], "Invalid value for '--workers' / '-w': 'many' is not a valid integer range."),
    (["grep", "C", "-d", "DS", "--backend", "nope"], "unknown backend 'nope' (known: local, dask, docker)"),
    (["grep", "C", "-d", "DS", "--scheduler", "tcp://x:1"], "--scheduler needs --backend dask"),
    (["grep", "C", "-d", "DS", "--backend", "dask"], "--backend dask needs --scheduler tcp://HOST:PORT or --cluster FILE"),
    (["grep", "C", "-d", "DS", "--backend", "dask", "--scheduler", "tls://127.0.0.1:1"],
     "--scheduler tls://127.0.0.1:1 needs --tls-ca-file, --tls-cert and --tls-key (or distributed.comm.tls.ca-file "
     "and .client.cert/.client.key in Dask's configuration)"),
    (["grep", "C", "-d", "DS", "--backend", "dask", "--scheduler", "tcp://127.0.0.1:1", "--tls-cert", "x"],
     "--tls-ca-file, --tls-cert and --tls-key go together (the CA, this client's certificate and key)"),
    (["grep", "C", "-d", "DS", "--backend", "dask", "--scheduler", "tls://127.0.0.1:1", "--tls-ca-file", "no-ca",
      "--tls-cert", "no-cert", "--tls-key", "no-key"], "TLS file no-ca does not exist"),
    (["grep", "C", "-d", "DS", "--tls-key", "x"],
     "--tls-ca-file, --tls-cert and --tls-key need --backend dask --scheduler tls://HOST:PORT"),
    (["grep", "C", "-d", "DS", "--backend", "docker", "--docker-host", "ftp://x"],
     "Docker host 'ftp://x' must be a unix://, tcp:// or ssh:// URL"),
    (["grep", "C", "-d", "DS", "--backend", "docker", "--docker-host", "unix://{W}/no.sock"],
     "cannot reach the Docker engine at unix://{W}/no.sock: no such file or directory"),
    (["grep", "C", "-d", "DS", "--backend", "docker", "--docker-host", "tcp://192.0.2.7:2375"],
     "Docker engine tcp://192.0.2.7:2375 is plain TCP on another machine: whoever reaches it is root there; use "
     "ssh://, or TLS (DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH, port 2376), or pass --insecure-engine"),
    (["grep", "C", "-d", "DS", "--insecure-engine"], "--insecure-engine needs --backend docker"),
    (["grep", "C", "-d", "DS", "--image", "x"], "--docker-host, --image and --platform need --backend docker"),
    (["grep", "C", "-d", "DS", "-o", "hits.xyz"], "cannot write 'hits.xyz': output suffix must be one of .tsv, .jsonl, .parquet"),
    (["grep", "C", "-d", "DS", "--cluster", "c.toml"], "--cluster needs --backend dask or --backend docker"),
    (["grep", "C", "-d", "DS", "--backend", "dask", "--cluster", "absent.toml"], "cluster file '{W}/absent.toml' does not exist"),
    (["grep", "C", "-d", "DS", "--backend", "dask", "--cluster", "c.toml"],
     "cluster is not up; run `workbench cluster up --cluster {W}/c.toml`"),
    # datasets and manifests
    (["grep", "C", "-d", "absent"], "dataset '{W}/absent' does not exist"),
    (["grep", "C", "-d", "empty"], "'{W}/empty' is not a dataset (no manifest.json); create one with `workbench ingest`"),
    (["info", "-d", "newer"], "dataset format version 2 is not supported (this workbench reads 1)"),
    (["info", "-d", "foreign"], "manifest.json is not a workbench dataset manifest"),
    (["info", "-d", "noshards"], "manifest.json is malformed (KeyError: 'shards')"),
    (["info", "-d", "badjson"],
     "cannot read {W}/badjson/manifest.json: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    (["info", "-d", "list"], "{W}/list/manifest.json is not a workbench dataset manifest"),
    (["info", "-d", "badindex"], "manifest.json is malformed (`index` must be an object)"),
    (["grep", "C", "-d", "missing"],
     f"shard shard-00001: {S1} is missing; run `workbench verify --dataset {{W}}/missing` or re-ingest the dataset"),
    (["verify", "-d", "DS", "--cluster", "c.toml"],
     "the dataset is not placed on a cluster; run `workbench place --dataset {W}/DS --cluster {W}/c.toml`"),
    # chemistry
    (["substructure", "C(", "-d", "DS"], "invalid SMARTS 'C(': RDKit cannot parse it"),
    (["substructure", "C1CC", "--smiles", "-d", "DS"], "invalid SMILES 'C1CC': RDKit cannot parse it"),
    (["substructure", "C", "--limit", "0", "-d", "DS"], "Invalid value for '--limit': 0 is not in the range x>=1."),
    (["similar", "C(", "-d", "DS"], "invalid SMILES 'C(': RDKit cannot parse it"),
    (["similar", "C", "--threshold", "1.5", "-d", "DS"],
     "Invalid value for '--threshold' / '-t': 1.5 is not in the range 0.0<=x<=1.0."),
    (["similar", "C", "--top", "0", "-d", "DS"], "Invalid value for '--top' / '-k': 0 is not in the range x>=1."),
    (["index", "-d", "DS", "--backend", "nope"], "unknown backend 'nope' (known: local, dask, docker)"),
    # ingest
    (["ingest", "absent.smi", "-d", "new"], "source 'absent.smi' does not exist"),
    (["ingest", "few.smi", "-d", "new", "--shard-size", "abc"], "invalid size 'abc' (examples: 64MB, 512kB, 1GiB)"),
    (["ingest", "few.smi", "-d", "new", "--shard-size", "10B"], "shard size '10B' is too small (at least 1kB)"),
    (["ingest", "few.smi", "-d", "new", "--format", "nope"], "unknown format 'nope' (choose from auto, cid-smiles, smi, sdf)"),
    (["ingest", "few.smi", "-d", "DS"], "'DS' already exists (use --force to replace it)"),
    (["ingest", "cut.smi.gz", "-d", "new"], None),  # truncated gzip: checked by prefix below
    # run
    (["run", "-d", "DS"], "give either a command (after --) or --job FILE"),
    (["run", "-d", "DS", "--job", "absent.toml"],
     "job definition 'absent.toml' does not exist (shipped: count-records, element-census, long-smiles)"),
    (["run", "-d", "DS", "--reduce", "nope", "--", "wc", "-l", "{shard}"],
     "unknown reduce 'nope' (choose from cat, sort, sum, sum-by-key)"),
    (["run", "-d", "DS", "--", "/nonexistent/tool", "{shard}"], "command '/nonexistent/tool' is not installed"),
    # cluster files
    (["nodes", "--cluster", "absent.toml"], "cluster file '{W}/absent.toml' does not exist"),
    (["nodes", "--cluster", "syntax.toml"],
     "cannot read cluster file {W}/syntax.toml: Expected ']' at the end of a table declaration (at line 1, column 9)"),
    (["nodes", "--cluster", "nonodes.toml"], "{W}/nonodes.toml: no [[nodes]] entries"),
    (["nodes", "--cluster", "unknown.toml"], "{W}/unknown.toml: [cluster] has unknown key(s) colour"),
    (["nodes", "--cluster", "relative.toml"],
     "{W}/relative.toml: node 'n1' data_dir must be an absolute path on the node, not 'srv'"),
    (["nodes", "--cluster", "twice.toml"], "{W}/twice.toml: node name 'n1' is used twice"),
    (["nodes", "--cluster", "port.toml"], "{W}/port.toml: node 'n1' port must be an integer in 1..65535, not 70000"),
    (["nodes", "--cluster", "c.toml"], "known_hosts file {W}/kh does not exist (host keys are always verified)"),
    (["place", "-d", "DS", "--cluster", "c.toml", "--replicas", "5"],
     "--replicas must be between 1 and the number of nodes (1), not 5"),
    (["place", "-d", "DS", "--cluster", "c.toml", "--mode", "nope"], "--mode must be local or shared, not 'nope'"),
    (["cluster", "status", "--cluster", "c.toml"], "cluster is not up; run `workbench cluster up --cluster {W}/c.toml`"),
    (["cluster", "down", "--cluster", "c.toml"], "no cluster was started with {W}/c.toml (nothing to stop)"),
    # bench, images
    (["bench", "scaling", "-d", "DS", "--job", "grep", "--query", "C", "--workers", "0,x"],
     "--workers must be a comma-separated list of integers, not '0,x'"),
    (["images", "list", "--docker-host", "tcp://192.0.2.7:2375"],
     "Docker engine tcp://192.0.2.7:2375 is plain TCP on another machine: whoever reaches it is root there; use "
     "ssh://, or TLS (DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH, port 2376), or pass --insecure-engine"),
    (["no-such-command"], "No such command 'no-such-command'."),
]


@pytest.mark.parametrize("argv,line", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_one_error_line_and_exit_2(world, monkeypatch, capsysbinary, argv, line):
    monkeypatch.chdir(world)
    before = tree(world)
    code = main([a.replace("{W}", str(world)) for a in argv])
    out, err = capsysbinary.readouterr()
    if line is None:  # the truncated gzip: its message carries zlib's words
        assert err.decode().startswith("error: cut.smi.gz: corrupt or truncated gzip data (")
        assert err.decode().endswith("); no dataset written\n")
    else:
        assert err.decode() == f"error: {line.replace('{W}', str(world))}\n"
    assert (code, out) == (2, b"")
    assert tree(world) == before  # nothing left behind, nothing changed


def test_the_catalogue_is_large():
    assert len(CASES) >= 40


def test_non_utf8_and_huge_arguments_are_plain_searches(world):
    """Bytes that are not UTF-8 and a 10 kB pattern reach grep as they are: no match, exit 1, no error."""
    proc = subprocess.run([*map(os.fsencode, WB), b"grep", b"C\xff\xfe", b"-d", b"DS"], cwd=world, capture_output=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, b"", b"")
    proc = subprocess.run([*WB, "grep", "-F", "C" * 10_000, "-c", "-d", "DS"], cwd=world, capture_output=True)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, b"0\n", b"")


def test_a_closed_pipe_ends_the_run_quietly(world):
    """`workbench grep … | head -1`: the reader stops early; exit 0, no error, no traceback."""
    proc = subprocess.run(f"{' '.join(WB)} grep C -d DS | head -c 10 >/dev/null; echo ${{PIPESTATUS[0]}}",
                          shell=True, executable="/bin/bash", cwd=world, capture_output=True, text=True)
    assert (proc.stdout, proc.stderr) == ("0\n", "")
    proc = subprocess.run(f"{' '.join(WB)} grep C -d DS | true; echo ${{PIPESTATUS[0]}}",
                          shell=True, executable="/bin/bash", cwd=world, capture_output=True, text=True)
    assert (proc.stdout, proc.stderr) == ("0\n", "")


def test_a_full_disk_leaves_no_dataset_behind(world, nci_smi, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], check=True)
    try:
        proc = subprocess.run([*WB, "ingest", str(nci_smi), "-d", str(disk / "ds")], capture_output=True, text=True)
        assert (proc.returncode, proc.stderr) == (
            2, f"error: cannot write dataset '{disk / 'ds'}': No space left on device; no dataset written\n")
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], check=True)
