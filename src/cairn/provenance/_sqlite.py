"""Recorded runs written to the data folder's SQLite database with the standard library's
``sqlite3``, for `cairn record`: importing SQLAlchemy and its ORM cost the record path about a
third of a second of CPU, more than the 1.10x goal leaves for everything (issue #14).

Only for a SQLite file that already stands at the migration heads (one ``SELECT`` on
``alembic_version``): anything else (PostgreSQL, a database to migrate, a server's
organisations) goes through the ORM service. The tables are the ORM's
(``cairn.provenance.models``): the column lists below are checked against them by a test, and
another records the same runs both ways and compares every stored value. What is written, and
when, follows ``service.start_run`` / ``service.save_run`` step by step.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from cairn._revisions import known_heads
from cairn.provenance._draft import RunDraft, run_values, utcnow
from cairn.provenance._paths import path_key
from cairn.provenance.capture import CapturedFile
from cairn.provenance.errors import RunNotFound

__all__ = ["EDGE_COLUMNS", "RUN_COLUMNS", "VERSION_COLUMNS", "SqliteRuns", "sqlite_path"]

RUN_COLUMNS = (
    "id",
    "organisation_id",
    "kind",
    "script",
    "script_sha256",
    "arguments",
    "cwd",
    "started_at",
    "ended_at",
    "status",
    "exit_code",
    "error_message",
    "traceback",
    "username",
    "host",
    "os",
    "interpreter",
    "interpreter_version",
    "packages",
    "console_log",
    "science_metadata",
)
"""Every column of ``prov_runs`` but ``seq`` (the database numbers runs)."""
VERSION_COLUMNS = (
    "organisation_id",
    "path",
    "path_key",
    "sha256",
    "size",
    "modified_at",
    "created_at",
    "archived_sha256",
    "flagged",
)
"""Every column of ``prov_file_versions`` but ``id``."""
EDGE_COLUMNS = ("run_seq", "file_id", "access", "at")
TAG_COLUMNS = ("run_seq", "tag")

_CHUNK = 500


def _stamp(value: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite ``DATETIME`` stores for a ``UtcDateTime`` (in UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")  # as UtcDateTime refuses it
    # isoformat pads the year to four digits and always writes microseconds, as SQLAlchemy
    # does (a test compares the two); it is one C call.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sql_value(value: object) -> object:
    if isinstance(value, datetime):
        return _stamp(value)
    if isinstance(value, str) and "\0" in value:
        from cairn.db.engine import NUL_REFUSED  # the engine's own refusal, word for word
        from cairn.errors import Invalid

        raise Invalid(NUL_REFUSED)
    return value


def _insert(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def sqlite_path(url: str) -> str | None:
    """The file of a plain ``sqlite:///`` URL (the data folder's default), else None."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or any(c in url for c in "?%") or url == prefix + ":memory:":
        return None
    return url[len(prefix) :] or None


class SqliteRuns:
    """Writes runs to one local SQLite database (no organisation: the data folder's store)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    @classmethod
    def open(cls, url: str) -> SqliteRuns | None:
        """The writer for ``url`` when it is a SQLite file at the migration heads, else None."""
        path = sqlite_path(url)
        if path is None or not os.path.isfile(path):
            return None
        # As the engine's connections (cairn.db.engine): transactions begun by hand, WAL.
        connection = sqlite3.connect(
            path, timeout=30, isolation_level=None, check_same_thread=False
        )  # end_record() may come from another thread than start_record()
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA busy_timeout=30000")
            stamped = {v for (v,) in connection.execute("SELECT version_num FROM alembic_version")}
        except sqlite3.Error:  # not a cairn database yet (no alembic_version): migrate first
            connection.close()
            return None
        if not stamped or stamped != known_heads():
            connection.close()
            return None
        return cls(connection)

    def close(self) -> None:
        self.connection.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self.connection)

    def start_run(self, draft: RunDraft) -> tuple[int, str]:
        """``service.start_run``: the run's row (status ``running``) and its tags, committed."""
        run_id = str(uuid.uuid4())
        values: dict[str, object] = {"id": run_id, "organisation_id": None}
        values.update(run_values(draft), science_metadata=None)
        with self._transaction() as cursor:
            cursor.execute(
                _insert("prov_runs", RUN_COLUMNS), [_sql_value(values[c]) for c in RUN_COLUMNS]
            )
            seq = cursor.lastrowid
            assert seq is not None
            tags = [(seq, _sql_value(t[:256])) for t in dict.fromkeys(t for t in draft.tags if t)]
            cursor.executemany(_insert("prov_run_tags", TAG_COLUMNS), tags)
        return seq, run_id

    def save_run(self, seq: int, draft: RunDraft) -> None:
        """``service.save_run`` on the row ``start_run`` wrote: its values, the file versions
        (existing ones shared) and the edges, in one transaction."""
        values = run_values(draft)
        names = list(values)
        with self._transaction() as cursor:
            cursor.execute(
                f"UPDATE prov_runs SET {', '.join(f'{n} = ?' for n in names)} "
                "WHERE seq = ? AND organisation_id IS NULL",
                [*(_sql_value(values[n]) for n in names), seq],
            )
            if cursor.rowcount != 1:
                raise RunNotFound(f"No run {str(seq)!r}.")  # as service.get_run says it
            files = [*draft.used, *draft.generated]
            identities = [_identity(item) for item in files]  # once: stamping costs
            ids = self._file_ids(cursor, files, identities, draft.archived)
            now = _stamp(utcnow())
            edges = sorted({(ids[key], f.access) for f, key in zip(files, identities, strict=True)})
            cursor.executemany(
                _insert("prov_edges", EDGE_COLUMNS),
                [(seq, file_id, access, now) for file_id, access in edges],
            )

    def _file_ids(
        self,
        cursor: sqlite3.Cursor,
        files: Sequence[CapturedFile],
        identities: Sequence[tuple[object, ...]],
        archived: dict[str, bool],
    ) -> dict[tuple[object, ...], int]:
        """Each file's version id: an existing version with the same path, content and times,
        or a new row (``service._versions`` and the bulk insert of ``service.save_run``)."""
        keys = {identity: path_key(str(identity[0])) for identity in identities}
        existing: dict[tuple[object, ...], tuple[int, str | None]] = {}
        # Only the versions with exactly these identities (the ORM reads every version of the
        # paths, which grows by one per run that rewrites them); ``IS`` matches nulls as ``==``.
        # CROSS JOIN keeps ``wanted`` outside and ``+`` keeps SQLite off the organisation index:
        # without statistics it scanned every version through it (1 s at 11,000 versions).
        wanted = [(key, *identity[1:]) for identity, key in keys.items()]
        for chunk in _chunks(wanted):
            rows = cursor.execute(
                "WITH wanted(path_key, sha256, size, modified_at, created_at) AS "
                f"(VALUES {', '.join(['(?, ?, ?, ?, ?)'] * len(chunk))}) "
                "SELECT v.id, v.path, v.sha256, v.size, v.modified_at, v.created_at, "
                "v.archived_sha256 FROM wanted w CROSS JOIN prov_file_versions v "
                "ON v.path_key = w.path_key AND v.sha256 IS w.sha256 AND v.size IS w.size "
                "AND v.modified_at IS w.modified_at AND v.created_at IS w.created_at "
                "WHERE +v.organisation_id IS NULL ORDER BY v.id",
                [value for identity in chunk for value in identity],
            )
            for file_id, path, sha256, size, modified, created, kept in rows:
                existing[(path, sha256, size, modified, created)] = (file_id, kept)
        ids: dict[tuple[object, ...], int] = {}
        insert = _insert("prov_file_versions", VERSION_COLUMNS)
        for item, key in zip(files, identities, strict=True):
            if key in ids:
                continue
            kept = item.sha256 if item.sha256 and archived.get(item.sha256) else None
            found = existing.get(key)
            if found is not None:
                ids[key] = found[0]
                if kept and found[1] is None:
                    cursor.execute(
                        "UPDATE prov_file_versions SET archived_sha256 = ? WHERE id = ?",
                        (kept, found[0]),
                    )
                    existing[key] = (found[0], kept)
                continue
            path, sha256, size, modified, created = key
            row = (None, path, keys[key], sha256, size, modified, created, kept, item.flagged)
            cursor.execute(insert, [_sql_value(v) for v in row])
            assert cursor.lastrowid is not None
            ids[key] = cursor.lastrowid
        return ids


def _identity(item: CapturedFile) -> tuple[object, ...]:
    """``service._identity`` as the stored text compares it."""
    return (item.path, item.sha256, item.size, _stamp(item.modified_at), _stamp(item.created_at))


def _chunks(items: list[tuple[object, ...]]) -> Iterable[list[tuple[object, ...]]]:
    return (items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK))


class _Transaction:
    """``BEGIN IMMEDIATE`` (as ``cairn.db.engine`` takes SQLite's write lock up front), then
    commit, or roll back on any error."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> sqlite3.Cursor:
        self.cursor = self.connection.cursor()
        self.cursor.execute("BEGIN IMMEDIATE")
        return self.cursor

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        try:
            self.connection.execute("COMMIT" if kind is None else "ROLLBACK")
        finally:
            self.cursor.close()
