"""Prolog export in RunManager's layout, and the seed paper's Listing 3 run over it."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from cairn.errors import Invalid
from cairn.provenance import RecordResult, RunStore
from cairn.provenance.prolog import export_prolog, query_prolog

Runner = Callable[..., RecordResult]
needs_swipl = pytest.mark.skipif(
    shutil.which("swipl") is None, reason="SWI-Prolog is not installed (apt install swi-prolog-nox)"
)

# The seed paper's Listing 3 as printed, except that its '#' comment lines (and the comments'
# continuation lines) become '%' comments: the printed listing is not valid Prolog there.
LISTING_3 = """\
:- table rm_file_immediately_downstream/2.
rm_file_immediately_downstream(Sha256_1, Sha256_2) :-
    exec_used_files(_, E, _, _, Sha256_1, _, _, _),
    exec_generated_files(_, E, _, _, Sha256_2, _, _, _).

% Base case 1.
:- table rm_file_downstream/2.
rm_file_downstream(Sha256_1, Sha256_2) :-
    Sha256_1 = Sha256_2.

% Base case 2.
rm_file_downstream(Sha256_1, Sha256_2) :-
    rm_file_immediately_downstream(Sha256_1, Sha256_2).

% Recursive part.
rm_file_downstream(Sha256_1, Sha256_2) :-
    rm_file_immediately_downstream(Sha256_1, S),
    rm_file_downstream(S, Sha256_2).

% The rule gv_nodes__files__upstream_of_file_sha256 computes all
%  file objects which has a given hashcode (DataSha256).
gv_nodes__files__upstream_of_file_sha256(_, DataSha256) :-
    rm_file_downstream(Sha256, DataSha256),
    filemeta(_, FilePath, Sha256, _, _, _, _),
    gv_labeled_node_sha256(Sha256, FilePath),
    fail
;
true.

% The rule gv_edges__execution_to_file__upstream_of_file_sha256
%  draws edges from an execution object to file objects by first
%  finding all upstream file objects for a given hashcode
%  (DownstreamDataSha256).
gv_edges__execution_to_file__upstream_of_file_sha256(_,
  DownstreamDataSha256) :-
    rm_file_downstream(DataSha256, DownstreamDataSha256),
    exec_generated_files(_, ExecutionId, _, _, DataSha256, _, _, _),
    gv_unlabeled_edge_sha256(ExecutionId, DataSha256),
    fail
;
true.
"""

TRANSFORM = (
    "import pathlib, sys\n"
    "text = pathlib.Path(sys.argv[2]).read_text()\n"
    "pathlib.Path(sys.argv[1]).write_text(text + '>' + sys.argv[1])\n"
)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_facts_follow_runmanager_s_layout(
    run_script: Runner, project: Path, store: RunStore
) -> None:
    (project / "a.txt").write_text("it's")
    result = run_script(TRANSFORM, "b.txt", "a.txt", tag=["v1", "x"])
    with store.uow.transaction() as session:
        facts = export_prolog(session)
    for head in ("execmeta(Seq,", "filemeta(FileId,", "tag(Seq,", "exec_used_files(Seq,"):
        assert f"% FACT: {head}" in facts
    (execmeta,) = [line for line in facts.splitlines() if line.startswith("execmeta(")]
    assert execmeta.startswith(f"execmeta({result.seq}, '{result.run_id}', 'null', 'null', ")
    assert execmeta.endswith(", 'null', 'null', 'null', 0).")
    filemeta = [line for line in facts.splitlines() if line.startswith("filemeta('urn")]
    assert len(filemeta) == 3  # script (execute), a.txt (read), b.txt (write)
    assert any(f"'{sha(project / 'a.txt')}'" in line and "'read'" in line for line in filemeta)
    assert "it\\'s" not in facts  # file content never enters the facts, paths are quoted
    assert re.search(r"tag\(\d+, '" + result.run_id + r"', 'v1'\)\.", facts)


def test_an_empty_store_still_has_every_section(store: RunStore) -> None:
    with store.uow.transaction() as session:
        facts = export_prolog(session)
    assert facts.count("% FACT: ") == 8  # 3 tables, 4 exec_* views, filemeta/7
    assert not [line for line in facts.splitlines() if line.startswith(("execmeta(", "tag("))]


@needs_swipl
def test_listing_3_runs_as_printed(
    run_script: Runner, project: Path, store: RunStore, tmp_path: Path
) -> None:
    (project / "raw.txt").write_text("raw")
    run_script(TRANSFORM, "mid.txt", "raw.txt", name="one.py")
    run_script(TRANSFORM, "end.txt", "mid.txt", name="two.py")
    rules = tmp_path / "listing3.P"
    rules.write_text(LISTING_3)
    with store.uow.transaction() as session:
        facts = export_prolog(session)
    raw, mid, end = (sha(project / n) for n in ("raw.txt", "mid.txt", "end.txt"))
    rows = query_prolog(facts, rules, f"rm_file_downstream(X, '{end}')")
    upstream = {row["X"] for row in rows}
    assert {raw, mid, end} <= upstream
    rows = query_prolog(facts, rules, f"rm_file_downstream('{raw}', Y)")
    assert {raw, mid, end} <= {row["Y"] for row in rows}
    rows = query_prolog(facts, rules, "rm_file_immediately_downstream(A, B)")
    assert {"A": raw, "B": mid} in rows and {"A": mid, "B": end} in rows
    # the drawing rules print DOT lines and succeed once
    assert query_prolog(facts, rules, f"gv_nodes__files__upstream_of_file_sha256(_, '{end}')") == [
        {}
    ]


@needs_swipl
def test_a_rule_file_with_a_syntax_error_is_swi_s_message(store: RunStore, tmp_path: Path) -> None:
    rules = tmp_path / "bad.P"
    rules.write_text("p(X :- .\n")
    with store.uow.transaction() as session:
        facts = export_prolog(session)
    with pytest.raises(Invalid, match="Syntax error"):
        query_prolog(facts, rules, "p(X)")
    rules.write_text("p(1).\n")
    with pytest.raises(Invalid, match="SWI-Prolog"):
        query_prolog(facts, rules, "p(X")
    with pytest.raises(Invalid, match="no such rules file"):
        query_prolog(facts, tmp_path / "absent.P", "p(X)")
    assert query_prolog(facts, rules, "p(X)") == [{"X": "1"}]
