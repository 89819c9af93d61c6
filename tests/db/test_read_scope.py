"""``read_scope``: a reader on SQLite takes no write lock, so it never waits for a writer."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text

from cairn.config import Settings
from cairn.db import make_engine, make_sessionmaker, migrate, session_scope
from cairn.db.engine import read_scope


def test_a_reader_reads_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    engine = make_engine(Settings(data_dir=tmp_path))
    migrate(engine)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as session:
        session.execute(text("CREATE TABLE probe (n INTEGER)"))
        session.execute(text("INSERT INTO probe VALUES (1)"))
    writing, release = threading.Event(), threading.Event()

    def writer() -> None:
        with session_scope(factory) as session:  # BEGIN IMMEDIATE: holds the write lock
            session.execute(text("UPDATE probe SET n = 2"))
            writing.set()
            release.wait(30)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(10)
        with read_scope(factory) as session:
            seen = session.execute(text("SELECT n FROM probe")).scalar_one()
        # Read while the writer still holds its lock: the value from before its change. A
        # reader that locked (BEGIN IMMEDIATE) would wait until the writer gave up after 30 s
        # and committed, and then read 2.
        assert seen == 1 and thread.is_alive()
    finally:
        release.set()
        thread.join()
        engine.dispose()
