"""The SQLite writer `cairn record` uses on a local data folder (``_sqlite``, issue #14): the
ORM's tables, the very rows ``service.save_run`` writes, and no SQLAlchemy on the record path.

These tests make their own SQLite databases (the writer is for SQLite files only), so they do
not run once per database like the rest."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.dialects import sqlite as sqlite_dialect

from cairn.blobs import open_blob_store
from cairn.config import Settings, get_settings
from cairn.db import UnitOfWork, make_engine, make_sessionmaker, migrate
from cairn.db.engine import NUL_REFUSED
from cairn.errors import Invalid
from cairn.provenance import RunStore, end_record, recording, start_record
from cairn.provenance._draft import RunDraft, run_values
from cairn.provenance._sqlite import (
    EDGE_COLUMNS,
    RUN_COLUMNS,
    VERSION_COLUMNS,
    SqliteRuns,
    _sql_value,
    _stamp,
    sqlite_path,
)
from cairn.provenance.capture import CaptureOptions
from cairn.provenance.errors import RunNotFound
from cairn.provenance.models import FileVersion, Run, RunEdge, RunTag
from cairn.provenance.recording import record_script
from cairn.provenance.service import RunSelector, view_runs
from cairn.provenance.syscalls import record_program

STAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

Make = Callable[[str], tuple[RunStore, Path]]


@pytest.fixture
def make_store(tmp_path: Path) -> Iterator[Make]:
    """``make_store("orm" | "sqlite3")``: a run store on a new migrated SQLite database."""
    opened: list[tuple[object, SqliteRuns | None]] = []

    def make(kind: str) -> tuple[RunStore, Path]:
        folder = tmp_path / kind
        url = f"sqlite:///{folder / 'cairn.db'}"
        engine = make_engine(Settings(data_dir=folder, database_url=url))
        migrate(engine)
        (folder / "work").mkdir()
        blobs = open_blob_store(str(folder / "blobs"))
        writer = SqliteRuns.open(url) if kind == "sqlite3" else None
        opened.append((engine, writer))
        uow = UnitOfWork(make_sessionmaker(engine))  # the sqlite3 store's uow only reads back
        return RunStore(uow, blobs, folder / "work", sqlite=writer), folder / "cairn.db"

    yield make
    for engine, writer in opened:
        if writer is not None:
            writer.close()
        engine.dispose()  # type: ignore[attr-defined]


def test_the_column_lists_are_the_orm_tables() -> None:
    assert set(RUN_COLUMNS) == {c.name for c in Run.__table__.columns} - {"seq"}
    assert set(VERSION_COLUMNS) == {c.name for c in FileVersion.__table__.columns} - {"id"}
    assert set(EDGE_COLUMNS) == {c.name for c in RunEdge.__table__.columns}
    assert {"run_seq", "tag"} == {c.name for c in RunTag.__table__.columns}
    # The row's values come from one function for both writers; the writer adds the rest.
    assert set(run_values(RunDraft())) == set(RUN_COLUMNS) - {
        "id",
        "organisation_id",
        "science_metadata",
    }


SCRIPT = """\
import os, pathlib, sys
data = pathlib.Path("in.txt").read_text()
pathlib.Path("big.bin").read_bytes()
out = pathlib.Path("out.txt")
if sys.argv[1] == "fail":
    out.read_text()  # the first run's output: a version both runs share
    out = pathlib.Path("out2.txt")
out.write_text(data.upper() + sys.argv[1])
os.utime(out, (1_700_000_000.5, 1_700_000_000.5))
pathlib.Path("gone.txt").write_text("temporary")
os.remove("gone.txt")
if sys.argv[1] == "fail":
    raise ValueError("no good")
"""
OUTPUTS = {"out.txt", "out2.txt"}


def _record_twice(store: RunStore, project: Path) -> None:
    """Two runs: the second reads the first's output (a shared version) and archives the
    input that was too large the first time (its stored version gains its blob)."""
    small = CaptureOptions(max_archive_bytes=100)
    record_script(project / "script.py", "ok", tag=["a", "b", "a", ""], store=store, options=small)
    record_script(project / "script.py", "fail", tag="second", store=store)


def _rows(database: Path, outputs: set[str]) -> dict[str, list[dict[str, object]]]:
    """Every provenance row as stored (raw text), with what must differ between two runs of
    the same script (ids, clocks, an output's inode times) checked for shape and masked."""
    connection = sqlite3.connect(database)
    connection.row_factory = sqlite3.Row
    found: dict[str, list[dict[str, object]]] = {}
    paths: dict[int, str] = {}
    try:
        for table, order in (
            ("prov_runs", "seq"),
            ("prov_run_tags", "run_seq, tag"),
            ("prov_file_versions", "id"),
            ("prov_edges", "run_seq, file_id, access"),
        ):
            rows = [dict(r) for r in connection.execute(f"SELECT * FROM {table} ORDER BY {order}")]
            for row in rows:
                if table == "prov_runs":
                    assert UUID.fullmatch(str(row.pop("id")))
                    for column in ("started_at", "ended_at"):
                        assert STAMP.fullmatch(str(row.pop(column)))
                if table == "prov_file_versions":
                    paths[int(str(row["id"]))] = str(row["path"])
                    for column in ("modified_at", "created_at"):
                        assert row[column] is None or STAMP.fullmatch(str(row[column]))
                    if os.path.basename(str(row["path"])) in outputs:
                        row["created_at"] = "(the output's own)"
                if table == "prov_edges":
                    assert STAMP.fullmatch(str(row.pop("at")))
            found[table] = rows
    finally:
        connection.close()
    assert paths  # the runs did see files
    return found


def test_the_sqlite3_writer_stores_what_the_orm_stores(
    make_store: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    (project / "in.txt").write_text("same input")
    (project / "big.bin").write_bytes(b"x" * 1000)
    (project / "script.py").write_text(SCRIPT)
    databases = {}
    for kind in ("orm", "sqlite3"):
        store, database = make_store(kind)
        assert (store.sqlite is None) == (kind == "orm")
        _record_twice(store, project)
        databases[kind] = database
    orm = _rows(databases["orm"], OUTPUTS)
    fast = _rows(databases["sqlite3"], OUTPUTS)
    assert fast == orm  # field by field, table by table
    runs = orm["prov_runs"]
    assert [r["status"] for r in runs] == ["ok", "error"]
    assert "ValueError: no good" in str(runs[1]["error_message"])
    assert [(t["run_seq"], t["tag"]) for t in orm["prov_run_tags"]] == [
        (1, "a"),
        (1, "b"),
        (2, "second"),
    ]
    versions = {os.path.basename(str(v["path"])): v for v in orm["prov_file_versions"]}
    assert versions["big.bin"]["archived_sha256"] is not None  # gained by the second run
    assert versions["big.bin"]["flagged"] == "too large to archive (1000 > 100 bytes)"
    assert "gone.txt" not in versions  # a temporary file removed by the run itself
    # The second run's read of out.txt is the first run's output version, shared.
    out_id = versions["out.txt"]["id"]
    assert {(e["run_seq"], e["access"]) for e in orm["prov_edges"] if e["file_id"] == out_id} == {
        (1, "write"),
        (2, "read"),
    }


def test_the_orm_reads_back_what_the_sqlite3_writer_stored(
    make_store: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = make_store("sqlite3")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("input")
    (tmp_path / "big.bin").write_bytes(b"y")
    (tmp_path / "script.py").write_text(SCRIPT)
    result = record_script(tmp_path / "script.py", "ok", tag="t", store=store)
    assert store.uow is not None
    with store.uow.read() as session:
        (view,) = view_runs(session, RunSelector(run_id=result.run_id))
        run = view.as_dict()
    assert run["status"] == "ok" and run["tags"] == ["t"] and run["seq"] == result.seq
    used = {os.path.basename(str(f["path"])): f for f in run["used"]}  # type: ignore[attr-defined]
    assert set(used) == {"script.py", "in.txt", "big.bin"}
    assert used["in.txt"]["archived"] is True
    assert store.blobs.read_bytes(str(used["in.txt"]["sha256"])) == b"input"


def test_start_end_record_and_recording_go_through_the_sqlite3_writer(
    make_store: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, database = make_store("sqlite3")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.txt").write_text("x")
    first = start_record(tag="explore", store=store)
    Path("x.txt").read_text()
    Path("y.txt").write_text("y")
    assert end_record() == first
    with pytest.raises(KeyError), recording(tag="block", store=store) as second:
        Path("z.txt").write_text("z")
        raise KeyError("missing")
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT r.id, r.kind, r.status, f.path, e.access FROM prov_runs r "
            "JOIN prov_edges e ON e.run_seq = r.seq JOIN prov_file_versions f ON f.id = e.file_id"
        ).fetchall()
    seen = {(i, kind, status, os.path.basename(p), a) for i, kind, status, p, a in rows}
    assert seen == {
        (first, "console", "ok", "x.txt", "read"),
        (first, "console", "ok", "y.txt", "write"),
        (second, "block", "error", "z.txt", "write"),
    }


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (apt install strace)")
def test_a_traced_program_goes_through_the_sqlite3_writer(
    make_store: Make, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, database = make_store("sqlite3")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("traced input")
    result = record_program(["sh", "-c", "cat in.txt > out.txt"], tag="traced", store=store)
    assert result.status == "ok"
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT r.kind, f.path, e.access FROM prov_runs r JOIN prov_edges e "
            "ON e.run_seq = r.seq JOIN prov_file_versions f ON f.id = e.file_id WHERE r.id = ?",
            (result.run_id,),
        ).fetchall()
    seen = {(kind, os.path.basename(p), access) for kind, p, access in rows}
    assert {("program", "in.txt", "read"), ("program", "out.txt", "write")} <= seen


def test_a_run_deleted_while_it_ran_is_not_found(make_store: Make, tmp_path: Path) -> None:
    store, database = make_store("sqlite3")
    assert store.sqlite is not None
    seq, _ = store.sqlite.start_run(RunDraft(script="s.py"))
    with sqlite3.connect(database) as connection:
        connection.execute("DELETE FROM prov_runs WHERE seq = ?", (seq,))
    with pytest.raises(RunNotFound):
        store.sqlite.save_run(seq, RunDraft(script="s.py", status="ok"))


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 12, 4, 18, 0, 0, tzinfo=UTC),
        datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(2026, 6, 30, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-7))),
    ],
)
def test_times_are_stored_as_sqlalchemy_stores_them(moment: datetime) -> None:
    stored = sqlite_dialect.DATETIME().bind_processor(sqlite_dialect.dialect())
    assert stored is not None
    assert _stamp(moment) == stored(moment.astimezone(UTC))  # what UtcDateTime hands it


def test_text_with_a_nul_is_refused_as_the_engine_refuses_it() -> None:
    with pytest.raises(Invalid) as refused:
        _sql_value("a\0b")
    assert refused.value.message == NUL_REFUSED


def test_only_a_sqlite_file_at_the_migration_heads_gets_the_writer(tmp_path: Path) -> None:
    assert sqlite_path("postgresql+psycopg://postgres@127.0.0.1/test") is None
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("sqlite:////a/b.db?mode=ro") is None
    assert sqlite_path("sqlite:////a/b.db") == "/a/b.db"
    missing = tmp_path / "missing.db"
    assert SqliteRuns.open(f"sqlite:///{missing}") is None
    assert not missing.exists()  # not created: the ORM path creates and migrates it
    sqlite3.connect(tmp_path / "empty.db").close()
    assert SqliteRuns.open(f"sqlite:///{tmp_path / 'empty.db'}") is None  # no alembic_version
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(Settings(data_dir=tmp_path, database_url=url))
    migrate(engine)
    engine.dispose()
    writer = SqliteRuns.open(url)
    assert writer is not None  # at the heads
    writer.close()
    with sqlite3.connect(tmp_path / "old.db") as connection:
        connection.execute("DELETE FROM alembic_version WHERE version_num LIKE 'provenance%'")
    assert SqliteRuns.open(url) is None  # behind the scripts: migrate through the ORM first


@pytest.fixture
def data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("CAIRN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CAIRN_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("CAIRN_DATABASE_URL", raising=False)
    monkeypatch.delenv("CAIRN_BLOB_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_the_local_store_migrates_a_new_folder_then_writes_with_sqlite3(
    data_folder: Path,
) -> None:
    with RunStore.local() as store:  # a new data folder: created and migrated by the ORM
        assert store.sqlite is None and store.uow is not None
    with RunStore.local() as store:
        assert store.sqlite is not None and store.uow is None


def test_cairn_record_imports_no_sqlalchemy_on_a_migrated_folder(data_folder: Path) -> None:
    (data_folder / "job.py").write_text("open('in.txt').read(); open('out.txt', 'w').write('o')\n")
    (data_folder / "in.txt").write_text("i")
    probe = textwrap.dedent(
        """\
        import json, sys
        from cairn.cli.main import app
        try:
            app(["record", "--json", "job.py"])
        except SystemExit as exit:
            code = exit.code
        print(json.dumps({"code": code, "sqlalchemy": "sqlalchemy" in sys.modules}))
        """
    )
    answers = []
    for _ in range(2):  # the first run creates and migrates the folder, through SQLAlchemy
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        answers.append(json.loads(done.stdout.splitlines()[-1]))
    assert answers == [{"code": 0, "sqlalchemy": True}, {"code": 0, "sqlalchemy": False}]
    with sqlite3.connect(data_folder / "data" / "cairn.db") as connection:
        recorded = connection.execute(
            "SELECT r.seq, f.path, e.access FROM prov_runs r JOIN prov_edges e ON "
            "e.run_seq = r.seq JOIN prov_file_versions f ON f.id = e.file_id ORDER BY 1, 2, 3"
        ).fetchall()
    for seq in (1, 2):
        assert {(os.path.basename(p), a) for s, p, a in recorded if s == seq} == {
            ("job.py", "execute"),
            ("in.txt", "read"),
            ("out.txt", "write"),
        }
