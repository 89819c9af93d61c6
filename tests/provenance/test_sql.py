"""Read-only SQL over the provenance views, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cairn.errors import Invalid
from cairn.provenance import RecordResult, RunStore
from cairn.provenance._select import Scope
from cairn.provenance.models import Run
from cairn.provenance.service import record_activity
from cairn.provenance.sql import VIEWS, query_sql
from tests.factories import make_org

Runner = Callable[..., RecordResult]

TRANSFORM = (
    "import pathlib, sys\n"
    "text = pathlib.Path(sys.argv[2]).read_text()\n"
    "pathlib.Path(sys.argv[1]).write_text(text + '>' + sys.argv[1])\n"
)


@pytest.fixture
def two_steps(run_script: Runner, project: Path) -> tuple[RecordResult, RecordResult]:
    (project / "raw.txt").write_text("raw")
    first = run_script(TRANSFORM, "mid.txt", "raw.txt", name="one.py", tag=["v1"])
    second = run_script(TRANSFORM, "end.txt", "mid.txt", name="two.py")
    return first, second


def test_every_view_answers(store: RunStore, two_steps: tuple[RecordResult, RecordResult]) -> None:
    first, second = two_steps
    with store.uow.transaction() as session:
        for name in VIEWS:
            assert query_sql(session, f"SELECT * FROM {name}").columns, name
        runs = query_sql(session, "SELECT seq, run_id, status FROM runs ORDER BY seq").as_dicts()
        tags = query_sql(session, "SELECT seq, tag FROM tags").as_dicts()
        edges = query_sql(
            session, "SELECT from_seq, to_seq, generated_path FROM lineage_edges;"
        ).as_dicts()
    assert [r["run_id"] for r in runs] == [first.run_id, second.run_id]
    assert {r["status"] for r in runs} == {"ok"}
    assert tags == [{"seq": first.seq, "tag": "v1"}]
    assert len(edges) == 1
    assert (edges[0]["from_seq"], edges[0]["to_seq"]) == (first.seq, second.seq)
    assert edges[0]["generated_path"].endswith("mid.txt")


def test_joins_and_own_with_clauses_work(
    store: RunStore, two_steps: tuple[RecordResult, RecordResult]
) -> None:
    with store.uow.transaction() as session:
        written = query_sql(
            session,
            "WITH w AS (SELECT g.seq, f.path FROM generated g JOIN files f"
            " ON f.file_id = g.file_id) SELECT r.script, w.path FROM w"
            " JOIN runs r ON r.seq = w.seq ORDER BY r.seq",
        )
    assert written.columns == ["script", "path"]
    assert [(Path(s).name, Path(p).name) for s, p in written.rows] == [
        ("one.py", "mid.txt"),
        ("two.py", "end.txt"),
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM prov_runs",
        "SELECT 1; DELETE FROM prov_runs",
        "SELECT 1; COMMIT; DELETE FROM prov_runs",
        "WITH d AS (DELETE FROM prov_runs RETURNING seq) SELECT * FROM d",
        "UPDATE prov_runs SET status = 'x'",
        "DROP TABLE prov_runs",
        "INSERT INTO prov_run_tags (run_seq, tag) VALUES (1, 'x')",
    ],
)
def test_a_statement_that_writes_is_refused_and_changes_nothing(
    store: RunStore, two_steps: tuple[RecordResult, RecordResult], statement: str
) -> None:
    with store.uow.transaction() as session, pytest.raises(Invalid, match="SQL refused"):
        query_sql(session, statement)
    with store.uow.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Run)) == 2
        assert query_sql(session, "SELECT count(*) AS n FROM tags").rows == [[1]]
        # the connection is writable again for the next user of the pool
        session.add(Run(kind="script", script="later.py"))


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("", "give one SELECT"),
        ("  ;  ", "give one SELECT"),
        ("SELEC * FROM runs", "SQL refused"),
        ("SELECT nope FROM runs", "SQL refused"),
        ("SELECT * FROM no_such_view", "SQL refused"),
    ],
)
def test_bad_sql_is_the_database_s_message(store: RunStore, statement: str, message: str) -> None:
    with store.uow.transaction() as session, pytest.raises(Invalid, match=message):
        query_sql(session, statement)


def test_views_keep_to_the_scope(store: RunStore, two_steps: object) -> None:
    with store.uow.transaction() as session:
        mine, theirs = make_org(session), make_org(session)
        record_activity(session, organisation_id=theirs.id, kind="upload", generated=["a" * 64])
        mine_id, theirs_id = mine.id, theirs.id
    with store.uow.transaction() as session:
        local = query_sql(session, "SELECT kind FROM runs").rows
        assert local == [["script"], ["script"]]  # the local store: no organisation's runs
        assert query_sql(session, "SELECT * FROM runs", scope=Scope((mine_id,))).rows == []
        assert query_sql(session, "SELECT * FROM files", scope=Scope((mine_id,))).rows == []
        theirs_rows = query_sql(session, "SELECT kind FROM runs", scope=Scope((theirs_id,)))
        assert theirs_rows.rows == [["upload"]]
