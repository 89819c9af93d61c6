"""The RunManager query API on both databases: selectors, view, lineage, delete, checkout,
file records, platform activity and organisation scope."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from cairn.errors import Invalid
from cairn.provenance import RecordResult, RunStore
from cairn.provenance.errors import NoSelector, RunNotFound
from cairn.provenance.models import Run
from cairn.provenance.service import (
    ActivityFile,
    RunSelector,
    Scope,
    delete_runs,
    export_file_records,
    list_runs,
    path_versions,
    purge_blobs,
    record_activity,
    trace_runs,
)
from tests.factories import make_org

Runner = Callable[..., RecordResult]

WRITE_RAW = "import pathlib, sys\npathlib.Path(sys.argv[1]).write_text(sys.argv[2])\n"
TRANSFORM = (
    "import pathlib, sys\n"
    "text = ''.join(pathlib.Path(p).read_text() for p in sys.argv[2:])\n"
    "pathlib.Path(sys.argv[1]).write_text(text.upper() + '|' + sys.argv[1])\n"
)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def selected(store: RunStore, **fields: object) -> list[int]:
    with store.uow.transaction() as session:
        return [int(row["seq"]) for row in list_runs(session, RunSelector(**fields))]  # type: ignore[arg-type]


def test_selectors_follow_runmanager(run_script: Runner, store: RunStore) -> None:
    a = run_script("pass", name="prepare.py", tag=["v1", "draft"])
    b = run_script("raise RuntimeError('disk full')", name="model.py", tag="v2")
    c = run_script("pass", name="plot_results.py", tag="final")
    with store.uow.transaction() as session:  # spread the start times over two years
        for result, when in (
            (a, datetime(2025, 6, 1, tzinfo=UTC)),
            (b, datetime(2026, 3, 9, 14, tzinfo=UTC)),
            (c, datetime(2026, 11, 20, tzinfo=UTC)),
        ):
            session.execute(update(Run).where(Run.seq == result.seq).values(started_at=when))
    assert selected(store) == [c.seq, b.seq, a.seq]  # -start_time by default
    assert selected(store, order_by="+startTime") == [a.seq, b.seq, c.seq]
    assert selected(store, order_by="script") == [b.seq, c.seq, a.seq]
    assert selected(store, script="plot") == [c.seq]
    assert selected(store, tag=("v1", "final")) == [c.seq, a.seq]  # OR-ed
    assert selected(store, tag=("v",)) == [b.seq, a.seq]  # substrings, as RunManager
    assert selected(store, error="disk") == [b.seq]
    assert selected(store, seq=str(b.seq)) == [b.seq]
    assert selected(store, seq=f"{a.seq}:{b.seq}") == [b.seq, a.seq]
    assert selected(store, start="2026") == [c.seq, b.seq]
    assert selected(store, end="2025") == [a.seq]
    assert selected(store, start="2026-03", end="2026-03") == [b.seq]
    assert selected(store, start="2026-03-09 15") == [c.seq]
    assert selected(store, run_id=b.run_id) == [b.seq]
    assert selected(store, run_id=b.run_id[:8] + "*") == [b.seq]
    assert selected(store, run_id="*%") == []  # % is literal, not a wildcard
    assert selected(store, script="nothing-like-this") == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("start", "26-11"),
        ("start", "2026-13"),
        ("seq", "a:b"),
        ("seq", "9:3"),
        ("order_by", "size"),
    ],
)
def test_bad_selectors_are_clear_errors(store: RunStore, field: str, value: str) -> None:
    with store.uow.transaction() as session, pytest.raises(Invalid):
        list_runs(session, RunSelector(**{field: value}))  # type: ignore[arg-type]


def _pipeline(run_script: Runner, project: Path) -> tuple[RecordResult, ...]:
    """raw.txt -> (clean) -> clean.txt -> (report) -> report.txt, plus an unrelated run."""
    raw = run_script(WRITE_RAW, "raw.txt", "abc", name="fetch.py")
    clean = run_script(TRANSFORM, "clean.txt", "raw.txt", name="clean.py")
    report = run_script(TRANSFORM, "report.txt", "clean.txt", name="report.py")
    other = run_script(WRITE_RAW, "other.txt", "zzz", name="other.py")
    return raw, clean, report, other


def _trace(store: RunStore, target: str, **kwargs: str) -> tuple[set[str], set[str]]:
    with store.uow.transaction() as session:
        found = trace_runs(session, target, **kwargs).as_dict()
    runs = {Path(str(r["script"])).name for r in found["runs"]}  # type: ignore[attr-defined]
    files = {Path(str(f["path"])).name for f in found["files"]}  # type: ignore[attr-defined]
    return runs, files


def test_trace_upstream_and_downstream_across_runs(
    run_script: Runner, project: Path, store: RunStore
) -> None:
    _raw, clean, _report, _other = _pipeline(run_script, project)
    runs, files = _trace(store, str(project / "report.txt"))
    assert runs == {"fetch.py", "clean.py", "report.py"}
    assert {"raw.txt", "clean.txt", "report.txt"} <= files and "other.txt" not in files
    runs, _ = _trace(store, sha("abc"), direction="downstream")
    assert runs == {"clean.py", "report.py"}
    runs, _ = _trace(store, clean.run_id, direction="both")
    assert runs == {"fetch.py", "clean.py", "report.py"}
    runs, _ = _trace(store, "report.txt", direction="downstream")  # relative to cwd
    assert runs == set()  # no run used report.txt
    with pytest.raises(RunNotFound), store.uow.transaction() as session:
        trace_runs(session, "/no/such/file")
    with pytest.raises(Invalid), store.uow.transaction() as session:
        trace_runs(session, "report.txt", direction="sideways")


def test_join_by_path_links_versions_that_hash_join_keeps_apart(
    run_script: Runner, project: Path, store: RunStore
) -> None:
    run_script(WRITE_RAW, "in.txt", "one", name="first.py")
    (project / "in.txt").write_text("edited by hand")  # a new version no run wrote
    run_script(TRANSFORM, "out.txt", "in.txt", name="second.py")
    by_hash, _ = _trace(store, "out.txt")
    by_path, _ = _trace(store, "out.txt", join="path")
    assert by_hash == {"second.py"}
    assert by_path == {"first.py", "second.py"}


def test_strict_join_needs_the_same_creation_time(
    run_script: Runner, project: Path, store: RunStore
) -> None:
    run_script(WRITE_RAW, "a.txt", "same", name="writer.py")
    (project / "b.txt").write_text("same")  # same content, another file
    run_script(TRANSFORM, "out.txt", "b.txt", name="reader.py")
    by_hash, _ = _trace(store, "out.txt")
    strict, _ = _trace(store, "out.txt", join="strict")
    assert by_hash == {"writer.py", "reader.py"}
    assert strict == {"reader.py"}


def test_a_run_reading_and_writing_one_path_is_no_endless_cycle(
    run_script: Runner, project: Path, store: RunStore
) -> None:
    (project / "log.txt").write_text("start")
    source = "import pathlib\np = pathlib.Path('log.txt')\np.write_text(p.read_text() + '+')\n"
    for _ in range(3):
        run_script(source, name="append.py")
    (project / "log.txt").write_text("start")  # back to the first content: a hash cycle
    run_script(source, name="append.py")
    runs, files = _trace(store, "log.txt", join="path")
    assert runs == {"append.py"} and files == {"log.txt", "append.py"}
    with store.uow.transaction() as session:
        found = trace_runs(session, "log.txt", join="path", direction="both")
        assert len(found.runs) == 4


def test_delete_refuses_no_selector_and_keeps_versions_others_need(
    run_script: Runner, project: Path, store: RunStore
) -> None:
    raw, *_ = _pipeline(run_script, project)
    with store.uow.transaction() as session, pytest.raises(NoSelector):
        delete_runs(session, RunSelector())
    with store.uow.transaction() as session:
        preview = delete_runs(session, RunSelector(script="fetch"), noop=True)
    assert [r["run_id"] for r in preview.runs] == [raw.run_id]
    assert len(selected(store)) == 4  # noop deleted nothing
    with store.uow.transaction() as session:
        report_ = delete_runs(session, RunSelector(run_id=raw.run_id))
    # raw.txt is still used by clean.py, so its archived version stays
    assert sha("abc") not in report_.unreferenced_blobs
    assert store.blobs.exists(sha("abc"))
    fetch_script = sha(WRITE_RAW)
    assert fetch_script not in report_.unreferenced_blobs  # other.py runs the same script
    with store.uow.transaction() as session:
        gone = delete_runs(session, RunSelector(script="other"))
    assert sha("zzz") in gone.unreferenced_blobs
    with store.uow.transaction() as session:
        purge_blobs(session, store.blobs, gone.unreferenced_blobs)
    assert not store.blobs.exists(sha("zzz"))
    assert store.blobs.exists(sha("abc"))
    runs, _ = _trace(store, "report.txt")
    assert runs == {"clean.py", "report.py"}


def test_export_file_records_writes_recon_yaml(
    run_script: Runner, project: Path, store: RunStore, tmp_path: Path
) -> None:
    (project / "data").mkdir()
    (project / "data" / "in 1.csv").write_text("x")
    result = run_script(TRANSFORM, "out.csv", "data/in 1.csv", name="step.py")
    with store.uow.transaction() as session:
        text = export_file_records(session, result.run_id, str(project), to=tmp_path / "r.yaml")
    assert text == 'inputs:\n  - "data/in 1.csv"\noutputs:\n  - "out.csv"\n'
    assert (tmp_path / "r.yaml").read_text() == text
    import yaml

    assert yaml.safe_load(text) == {"inputs": ["data/in 1.csv"], "outputs": ["out.csv"]}


def test_platform_activity_joins_the_lineage(
    run_script: Runner, project: Path, store: RunStore
) -> None:
    run_script(WRITE_RAW, "made.txt", "payload", name="make.py")
    with store.uow.transaction() as session:
        activity = record_activity(
            session,
            organisation_id=None,
            kind="workspace.package",
            used=[ActivityFile(sha("payload"), "made.txt")],
            generated=["f" * 64],
        )
        assert activity.status == "ok"
    runs, _ = _trace(store, "f" * 64)
    assert runs == {"make.py", "workspace.package"}
    with store.uow.transaction() as session, pytest.raises(Invalid):
        record_activity(session, organisation_id=None, kind="x", used=["../etc/passwd"])


def test_another_organisations_runs_are_invisible(store: RunStore, project: Path) -> None:
    with store.uow.transaction() as session:
        mine, theirs = make_org(session), make_org(session)
        run = record_activity(
            session, organisation_id=theirs.id, kind="upload", generated=["a" * 64]
        )
        run_id, mine_id, theirs_id = run.id, mine.id, theirs.id
    with store.uow.transaction() as session:
        assert list_runs(session, RunSelector()) == []  # local store: no organisation's runs
        assert list_runs(session, RunSelector(), scope=Scope((mine_id,))) == []
        assert len(list_runs(session, RunSelector(), scope=Scope((theirs_id,)))) == 1
        with pytest.raises(RunNotFound):
            trace_runs(session, run_id, scope=Scope((mine_id,)))
        with pytest.raises(RunNotFound):
            trace_runs(session, "a" * 64, scope=Scope((mine_id,)))
        assert delete_runs(session, RunSelector(run_id=run_id), scope=Scope((mine_id,))).runs == []
    with store.uow.transaction() as session:
        assert len(list_runs(session, RunSelector(), scope=Scope((theirs_id,)))) == 1


def test_path_versions_name_the_runs_behind_each_version(
    run_script: Runner, project: Path, store: RunStore
) -> None:
    write = "import pathlib, sys\npathlib.Path('out.txt').write_text(sys.argv[1])\n"
    bump = (  # reads and rewrites the same path: a lineage cycle by path, not by content
        "import pathlib\np = pathlib.Path('out.txt')\np.write_text(p.read_text() + '+')\n"
    )
    first = run_script(write, "one", name="write.py")
    second = run_script(bump, name="bump.py")
    third = run_script(write, "one", name="write.py")  # the first content again
    with store.uow.transaction() as session:
        found: list[dict[str, Any]] = [v.as_dict() for v in path_versions(session, "out.txt")]
        assert found == [v.as_dict() for v in path_versions(session, str(project / "out.txt"))]
        with pytest.raises(RunNotFound):
            path_versions(session, "never.txt")
        with pytest.raises(RunNotFound):  # the local store's runs are no organisation's
            path_versions(session, "out.txt", scope=Scope((make_org(session).id,)))
    one, bumped = hashlib.sha256(b"one").hexdigest(), hashlib.sha256(b"one+").hexdigest()
    assert [v["sha256"] for v in found] == [one, bumped]
    assert [r["seq"] for r in found[0]["generated_by"]] == [first.seq, third.seq]
    assert [r["seq"] for r in found[0]["used_by"]] == [second.seq]
    assert [r["seq"] for r in found[1]["generated_by"]] == [second.seq]
    assert found[1]["used_by"] == []


def test_file_versions_are_looked_up_by_organisation_and_path_together(session: Any) -> None:
    """Every run and platform activity looks up its files' existing versions; through the
    organisation's index alone that read the organisation's whole history per 500 paths
    (SQLite chose it, having no statistics)."""
    from sqlalchemy import event

    from cairn.provenance.capture import CapturedFile
    from cairn.provenance.service import _versions

    org = make_org(session)
    connection = session.connection()
    seen: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", keep)
    try:
        _versions(session, org.id, [CapturedFile("/data/a.csv", "read", "a" * 64, 1)])
    finally:
        event.remove(connection, "before_cursor_execute", keep)
    [(statement, parameters)] = [s for s in seen if "prov_file_versions" in s[0]]
    if connection.dialect.name == "sqlite":
        plan = " ".join(
            row[3]
            for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        )
        assert "organisation_id=? AND path_key=?" in plan, plan
    else:  # PostgreSQL plans by statistics: with no scan allowed, an index on the path serves
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = " ".join(
            row[0] for row in connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        )
        assert "path_key" in plan.split("Filter:")[0], plan
