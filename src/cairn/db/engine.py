"""Engine and session factories; SQLite gets WAL mode and foreign keys."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, sessionmaker

from cairn.config import Settings
from cairn.errors import Invalid

__all__ = ["READ_ONLY", "make_engine", "make_sessionmaker", "read_scope", "session_scope"]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see _begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


# The execution option ``read_scope`` sets: the transaction only reads.
READ_ONLY = "cairn_read_only"


def _begin_immediate(connection: Any) -> None:
    # Take SQLite's write lock up front: two deferred transactions that both upgrade to writing
    # deadlock with SQLITE_BUSY, while IMMEDIATE ones queue on busy_timeout. Keep transactions
    # short (no unpacking or hashing inside them) and this costs little.
    if connection.get_execution_options().get(READ_ONLY):
        # A reader needs no lock: in WAL mode it reads a snapshot and never waits for the
        # writer, so polls do not queue behind the engine's events (issue #15, overhead).
        connection.exec_driver_sql("BEGIN")
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE")


NUL_REFUSED = "A value is not valid for the database: text may not contain NUL (0x00) characters."


def _values(parameters: Any) -> Iterator[Any]:
    if isinstance(parameters, dict):
        yield from parameters.values()
    elif isinstance(parameters, list | tuple):
        for item in parameters:
            yield from _values(item) if isinstance(item, dict | list | tuple) else (item,)


def _refuse_nul(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    # PostgreSQL refuses NUL in text and SQLite stores it: refuse it on SQLite too, so a value
    # means the same on both (session_scope turns PostgreSQL's refusal into the same Invalid).
    if any(isinstance(value, str) and "\0" in value for value in _values(parameters)):
        raise Invalid(NUL_REFUSED)


def make_engine(settings: Settings) -> Engine:
    """An engine for ``settings.database_url``; creates the data folder for SQLite."""
    url = settings.database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _begin_immediate)
        event.listen(engine, "before_cursor_execute", _refuse_nul)
        return engine
    return create_engine(url, pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error.

    A value the database refuses (a NUL byte in PostgreSQL text, a number out of a column's
    range) is the caller's input at fault, so it becomes ``Invalid`` rather than a crash.
    """
    with factory() as session:
        try:
            yield session
            session.commit()
        except DataError as exc:
            session.rollback()
            reason = str(exc.orig).splitlines()[0] if exc.orig else "value out of range"
            if "NUL" in reason:
                raise Invalid(NUL_REFUSED) from exc
            raise Invalid(f"A value is not valid for the database: {reason}.") from exc
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for reading only: on SQLite it takes no write lock. It ends with a commit,
    not a rollback, because a rollback would expire the rows it read (the caller keeps using
    them, e.g. the actor's user); with nothing written, that commit takes no lock either."""
    with factory() as session:
        session.connection(execution_options={READ_ONLY: True})
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
