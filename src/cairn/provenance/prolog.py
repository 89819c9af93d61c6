"""Prolog facts in RunManager's layout, and queries over them with SWI-Prolog.

Facts (``export_prolog``), each section headed by ``% FACT: name(args).`` even when empty;
atoms single-quoted, hashes quoted lowercase hex, nulls written ``'null'``:

- ``execmeta/17``: Seq, ExecutionId, MetadataId, DatapackageId, User, Subject, HostId,
  StartTime, OperatingSystem, Runtime, SoftwareApplication, EndTime, ErrorMessage,
  PublishTime, PublishNodeId, PublishId, Console (1 for a console recording, else 0).
- ``filemeta/11``: FileId, ExecutionId, FilePath, Sha256, Size, User, ModifyTime, CreateTime,
  Access, Format, ArchivedFilePath (one row per run and access, as RunManager writes them).
- ``tag/3``: Seq, ExecutionId, Tag.

Derived views, as the published rule sets use them:

- ``exec_used_files/9`` and ``exec_generated_files/9`` (yw-idcc-17's rm_view_rules): Seq,
  ExecutionId, User, FileId, FilePath, Sha256, Format, ArchivedFilePath, Access.
- ``exec_used_files/8`` and ``exec_generated_files/8`` (the seed paper's Listing 3, execution
  id second, SHA-256 fifth): Seq, ExecutionId, FileId, FilePath, Sha256, Format,
  ArchivedFilePath, Access.
- ``filemeta/7`` (path second, SHA-256 third): FileId, FilePath, Sha256, Size, ModifyTime,
  CreateTime, Access.
- ``gv_*`` drawing helpers writing Graphviz DOT lines: ``gv_labeled_node_sha256/2``,
  ``gv_unlabeled_edge_sha256/2``, ``gv_labeled_node/2``, ``gv_unlabeled_edge/2``,
  ``gv_graph_begin/1``, ``gv_graph_end/0``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.errors import Invalid
from cairn.provenance._select import LOCAL, Scope
from cairn.provenance.models import FileVersion, Run, RunEdge, RunTag

__all__ = ["VIEWS", "export_prolog", "query_prolog"]

_VIEWS = """\
{used9}
exec_used_files(Seq, E, User, F, Path, Sha, Format, Archived, Access) :-
    execmeta(Seq, E, _, _, User, _, _, _, _, _, _, _, _, _, _, _, _),
    filemeta(F, E, Path, Sha, _, _, _, _, Access, Format, Archived),
    Access \\== 'write'.
{generated9}
exec_generated_files(Seq, E, User, F, Path, Sha, Format, Archived, 'write') :-
    execmeta(Seq, E, _, _, User, _, _, _, _, _, _, _, _, _, _, _, _),
    filemeta(F, E, Path, Sha, _, _, _, _, 'write', Format, Archived).
{used8}
exec_used_files(Seq, E, F, Path, Sha, Format, Archived, Access) :-
    exec_used_files(Seq, E, _, F, Path, Sha, Format, Archived, Access).
{generated8}
exec_generated_files(Seq, E, F, Path, Sha, Format, Archived, Access) :-
    exec_generated_files(Seq, E, _, F, Path, Sha, Format, Archived, Access).
% FACT: filemeta(FileId, FilePath, Sha256, Size, ModifyTime, CreateTime, Access).
filemeta(F, Path, Sha, Size, Modified, Created, Access) :-
    filemeta(F, _, Path, Sha, Size, _, Modified, Created, Access, _, _).
% Graphviz helpers: each writes one DOT line.
gv_graph_begin(Name) :- format('digraph ~w {~n', [Name]).
gv_graph_end :- format('}~n').
gv_labeled_node(Id, Label) :- format('"~w" [label="~w"]~n', [Id, Label]).
gv_unlabeled_edge(From, To) :- format('"~w" -> "~w"~n', [From, To]).
gv_labeled_node_sha256(Sha256, Label) :- format('"~w" [label="~w"]~n', [Sha256, Label]).
gv_unlabeled_edge_sha256(From, To) :- format('"~w" -> "~w"~n', [From, To]).
"""
_ARGS9 = "Seq, ExecutionId, User, FileId, FilePath, Sha256, Format, ArchivedFilePath, Access"
_ARGS8 = "Seq, ExecutionId, FileId, FilePath, Sha256, Format, ArchivedFilePath, Access"
VIEWS = (
    _VIEWS.replace("{{", "{")
    .replace("}}", "}")
    .replace("{used9}", f"% FACT: exec_used_files({_ARGS9}).")
    .replace("{generated9}", f"% FACT: exec_generated_files({_ARGS9}).")
    .replace("{used8}", f"% FACT: exec_used_files({_ARGS8}).")
    .replace("{generated8}", f"% FACT: exec_generated_files({_ARGS8}).")
)

_HEADS = {
    "execmeta": "execmeta(Seq, ExecutionId, MetadataId, DatapackageId, User, Subject, HostId, "
    "StartTime, OperatingSystem, Runtime, SoftwareApplication, EndTime, ErrorMessage, "
    "PublishTime, PublishNodeId, PublishId, Console).",
    "filemeta": "filemeta(FileId, ExecutionId, FilePath, Sha256, Size, User, ModifyTime, "
    "CreateTime, Access, Format, ArchivedFilePath).",
    "tag": "tag(Seq, ExecutionId, Tag).",
}


def _atom(value: object) -> str:
    """A Prolog term for ``value``: integers bare, everything else a quoted atom."""
    if value is None:
        return "'null'"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def _time(value: Any) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _fact(name: str, *values: object) -> str:
    return f"{name}({', '.join(_atom(v) for v in values)})."


def export_prolog(session: Session, *, scope: Scope = LOCAL) -> str:
    """Every run of the scope as RunManager's facts, then the derived views."""
    runs = list(
        session.scalars(select(Run).where(scope.clause(Run.organisation_id)).order_by(Run.seq))
    )
    by_seq = {run.seq: run for run in runs}
    lines = [f"% FACT: {_HEADS['execmeta']}"]
    for run in runs:
        lines.append(
            _fact(
                "execmeta",
                run.seq,
                run.id,
                None,
                None,
                run.username,
                None,
                run.host,
                _time(run.started_at),
                run.os,
                run.interpreter_version,
                run.script,
                _time(run.ended_at),
                run.error_message,
                None,
                None,
                None,
                1 if run.kind == "console" else 0,
            )
        )
    lines.append(f"% FACT: {_HEADS['filemeta']}")
    rows = session.execute(
        select(RunEdge.run_seq, RunEdge.access, FileVersion)
        .join(FileVersion, FileVersion.id == RunEdge.file_id)
        .join(Run, Run.seq == RunEdge.run_seq)
        .where(scope.clause(Run.organisation_id))
        .order_by(RunEdge.run_seq, FileVersion.id, RunEdge.access)
    )
    for seq, access, version in rows:
        run = by_seq[seq]
        archived = f"blobs/{version.archived_sha256}" if version.archived_sha256 else None
        lines.append(
            _fact(
                "filemeta",
                f"urn:cairn:file:{run.id}:{version.id}:{access}",
                run.id,
                version.path,
                version.sha256,
                version.size,
                run.username,
                _time(version.modified_at),
                _time(version.created_at),
                access,
                None,
                archived,
            )
        )
    lines.append(f"% FACT: {_HEADS['tag']}")
    tags = session.execute(
        select(RunTag.run_seq, RunTag.tag)
        .join(Run, Run.seq == RunTag.run_seq)
        .where(scope.clause(Run.organisation_id))
        .order_by(RunTag.run_seq, RunTag.tag)
    )
    for number, (seq, tag) in enumerate(tags, start=1):
        lines.append(_fact("tag", number, by_seq[seq].id, tag))
    return "\n".join(lines) + "\n" + VIEWS


_DRIVER = """\
:- use_module(library(http/json)).
cairn_main(GoalText) :-
    catch(term_string(Goal, GoalText, [variable_names(Vs)]), E,
          (print_message(error, E), halt(3))),
    catch(forall(call(Goal), cairn_row(Vs)), E2, (print_message(error, E2), halt(4))).
cairn_row(Vs) :-
    findall(N-S, (member(N=V, Vs), \\+ sub_atom(N, 0, 1, _, '_'),
                  format(string(S), '~w', [V])), Pairs),
    dict_pairs(D, row, Pairs),
    json_write_dict(current_output, D, [width(0)]), nl.
"""


def query_prolog(
    facts: str, rules: str | Path, goal: str, *, timeout: float = 120.0
) -> list[dict[str, str]]:
    """Run ``goal`` over the facts and the rules file with SWI-Prolog; one dict of variable
    bindings per solution. A rule file SWI cannot read, or a goal that fails with an error,
    is ``Invalid`` carrying SWI's own message."""
    swipl = shutil.which("swipl")
    if swipl is None:
        raise Invalid("Prolog queries need SWI-Prolog (apt install swi-prolog-nox)")
    rules_path = Path(rules)
    if not rules_path.is_file():
        raise Invalid(f"no such rules file: {str(rules)!r}")
    with tempfile.TemporaryDirectory(prefix="cairn-prolog-") as tmp:
        folder = Path(tmp)
        (folder / "facts.P").write_text(facts, encoding="utf-8")
        (folder / "driver.pl").write_text(_DRIVER, encoding="utf-8")
        program = (
            f"consult({_atom(str(folder / 'driver.pl'))}), "
            "style_check(-discontiguous), "
            f"consult({_atom(str(folder / 'facts.P'))}), "
            f"consult({_atom(str(rules_path.resolve()))}), "
            f"cairn_main({_atom(goal)})"
        )
        try:
            done = subprocess.run(
                [swipl, "-q", "--on-error=status", "-g", program, "-t", "halt"],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise Invalid(f"the Prolog query ran longer than {timeout:.0f} s") from exc
    errors = [line for line in done.stderr.splitlines() if line.startswith(("ERROR", "Warning"))]
    if done.returncode != 0 or any(line.startswith("ERROR") for line in errors):
        message = "\n".join(errors) or done.stderr.strip() or f"swipl exited {done.returncode}"
        raise Invalid(f"SWI-Prolog: {message.replace(tmp, '')}", detail=errors)
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
