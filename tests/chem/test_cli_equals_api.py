"""The CLI and the Python API give the same records for every job and reduce: one final step, in ``Run``.

Each case is a CLI command line and the job the API runs for it; the CLI's stdout must equal the
API table's rows (in order where the job orders them), and both must equal independent ground truth
where one is cheap (GNU grep, RDKit).
"""

from __future__ import annotations

import pytest

from tests.chem.conftest import similarity_truth, substructure_truth
from tests.helpers import gnu_grep, shard_files
from workbench.cli import main
from workbench.jobs.command import CommandJob
from workbench.jobs.grep import GrepJob
from workbench.jobs.similarity import SimilarityJob
from workbench.jobs.substructure import SubstructureJob

COUNT = ["sh", "-c", "grep -c Cl \"$1\" || true", "count", "{shard}"]
CL = ["sh", "-c", "grep -h Cl \"$1\" || true", "lines", "{shard}"]
BR = ["sh", "-c", "grep -h Br \"$1\" || true", "lines", "{shard}"]
BY_KEY = ["sh", "-c", "for e in F Cl Br; do printf '%s\\t%s\\n' $e $(grep -c $e \"$1\"); done", "census", "{shard}"]

CASES = {
    "grep": (["grep", "-F", "C(=O)N"], GrepJob("C(=O)N", fixed=True), False),
    "grep -c": (["grep", "-c", "Br"], GrepJob("Br", count_only=True), False),
    "run cat": (["run", "--", *CL], CommandJob(CL), False),
    "run sort": (["run", "--reduce", "sort", "--", *BR], CommandJob(BR, reduce="sort"), True),
    "run sum": (["run", "--reduce", "sum", "--", *COUNT], CommandJob(COUNT, reduce="sum"), True),
    "run sum-by-key": (["run", "--reduce", "sum-by-key", "--", *BY_KEY], CommandJob(BY_KEY, reduce="sum-by-key"), True),
    "substructure": (["substructure", "c1ccncc1"], SubstructureJob("c1ccncc1"), False),
    "substructure --limit": (["substructure", "[#7]", "--limit", "9"], SubstructureJob("[#7]", limit=9), True),
    "substructure -c --limit": (["substructure", "C", "-c", "--limit", "1"],
                                SubstructureJob("C", limit=1, count_only=True), False),
    "similar --top": (["similar", "CC(=O)Nc1ccc(O)cc1", "--threshold", "0.2", "--top", "7"],
                      SimilarityJob("CC(=O)Nc1ccc(O)cc1", threshold=0.2, top=7), True),
}


def _rows(table) -> list[bytes]:
    columns = [table[name].to_pylist() for name in table.column_names]
    return ["\t".join(map(str, row)).encode() for row in zip(*columns)]


@pytest.mark.parametrize("case", list(CASES))
def test_cli_prints_what_the_api_returns(case, nci_indexed, capfdbinary):
    args, job, ordered = CASES[case]
    code = main([args[0], "--dataset", str(nci_indexed.directory), "--workers", "2", *args[1:]])
    out, _ = capfdbinary.readouterr()
    run = nci_indexed.run(job, workers=2)
    table = run.table()
    if job.count_only:
        assert table.num_rows == 0 and out == f"{run.count}\n".encode()
        assert code == (0 if run.count else 1)
        return
    cli_lines, api_lines = out.splitlines(), _rows(table)
    assert code == 0 and cli_lines
    assert (cli_lines if ordered else sorted(cli_lines)) == (api_lines if ordered else sorted(api_lines))
    assert run.count == len(api_lines)


def test_the_cases_equal_ground_truth(nci_indexed, nci_records):
    files = shard_files(nci_indexed.directory)
    assert nci_indexed.run(CASES["grep -c"][1]).table().num_rows == 0
    counted = nci_indexed.run(CASES["grep -c"][1])
    list(counted.payloads())
    assert counted.count == len(gnu_grep(files, "-e", "Br"))
    assert _rows(nci_indexed.table(CASES["run sort"][1])) == sorted(gnu_grep(files, "-e", "Br"))
    assert _rows(nci_indexed.table(CASES["run sum"][1])) == [str(len(gnu_grep(files, "-e", "Cl"))).encode()]
    census = _rows(nci_indexed.table(CASES["run sum-by-key"][1]))
    assert census == [f"{e}\t{len(gnu_grep(files, '-e', e))}".encode() for e in sorted(["F", "Cl", "Br"])]
    limited = _rows(nci_indexed.table(CASES["substructure --limit"][1]))
    assert limited == [f"{c}\t{s}".encode() for c, s in substructure_truth(nci_records, "[#7]")[:9]]
    one = nci_indexed.run(CASES["substructure -c --limit"][1])
    list(one.payloads())
    assert one.count == 1
    top = nci_indexed.table(CASES["similar --top"][1])
    truth = similarity_truth(nci_records, "CC(=O)Nc1ccc(O)cc1", 0.2)[:7]
    assert top["cid"].to_pylist() == [c for c, _, _ in truth]
