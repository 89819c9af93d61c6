"""Read-only SQL over the recorded runs, through six documented views (``cairn runs query --sql``).

The views are common table expressions put in front of the user's statement, not objects in
the database: the names stay short (``runs``, ``files``, ...) without claiming them in a schema
every area shares, they are limited to the caller's scope like every other provenance query, and
they are the stable interface while the tables underneath may change. docs/provenance.md lists
their columns.

The statement becomes a subquery (``SELECT * FROM (<statement>) AS q``), so it is one ``SELECT``
(or ``WITH … SELECT``, or ``VALUES``) or a syntax error: a second statement, ``DELETE`` or a
data-modifying ``WITH`` cannot parse there. The transaction is read-only as well (SQLite
``PRAGMA query_only``, PostgreSQL ``SET TRANSACTION READ ONLY``), and PostgreSQL stops it after
``timeout`` seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session

from cairn.errors import Invalid
from cairn.provenance._select import LOCAL, Scope

__all__ = ["VIEWS", "SqlResult", "query_sql"]

VIEWS: dict[str, str] = {
    "runs": (
        "SELECT r.seq, r.id AS run_id, r.kind, r.script, r.script_sha256, r.cwd,"
        " r.started_at AS start_time, r.ended_at AS end_time, r.status, r.exit_code,"
        " r.error_message, r.username AS user_name, r.host, r.os, r.interpreter,"
        " r.interpreter_version FROM prov_runs r WHERE {runs_in_scope}"
    ),
    "tags": (
        "SELECT t.run_seq AS seq, t.tag FROM prov_run_tags t"
        " JOIN prov_runs r ON r.seq = t.run_seq WHERE {runs_in_scope}"
    ),
    "files": (
        "SELECT f.id AS file_id, f.path, f.sha256, f.size, f.modified_at AS modified_time,"
        " f.created_at AS created_time, f.archived_sha256, f.flagged"
        " FROM prov_file_versions f WHERE {files_in_scope}"
    ),
    "used": (
        "SELECT e.run_seq AS seq, e.file_id, e.access, e.at FROM prov_edges e"
        " JOIN prov_runs r ON r.seq = e.run_seq WHERE e.access <> 'write' AND {runs_in_scope}"
    ),
    "generated": (
        "SELECT e.run_seq AS seq, e.file_id, e.access, e.at FROM prov_edges e"
        " JOIN prov_runs r ON r.seq = e.run_seq WHERE e.access = 'write' AND {runs_in_scope}"
    ),
    # run -> run through content: the first run wrote what the second read (any path)
    "lineage_edges": (
        "SELECT DISTINCT g.seq AS from_seq, u.seq AS to_seq, gf.sha256,"
        " gf.path AS generated_path, uf.path AS used_path"
        " FROM generated g JOIN files gf ON gf.file_id = g.file_id"
        " JOIN files uf ON uf.sha256 = gf.sha256 JOIN used u ON u.file_id = uf.file_id"
        " WHERE g.seq <> u.seq"
    ),
}
"""The views a statement may read, in dependency order (later ones read earlier ones)."""


@dataclass(frozen=True)
class SqlResult:
    """Column names and rows, with times as ISO 8601 text (the same on both databases)."""

    columns: list[str]
    rows: list[list[Any]]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def _wrapped(statement: str, scope: Scope) -> tuple[str, dict[str, object]]:
    body = statement.strip().rstrip(";").strip()
    if not body:
        raise Invalid("give one SELECT statement, e.g. --sql 'SELECT * FROM runs'")
    runs_in_scope, params = scope.sql("r")
    files_in_scope, _ = scope.sql("f")
    views = ",\n".join(
        f"{name} AS ({sql.format(runs_in_scope=runs_in_scope, files_in_scope=files_in_scope)})"
        for name, sql in VIEWS.items()
    )
    return f"WITH {views}\nSELECT * FROM (\n{body}\n) AS q", params


def _cell(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _message(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    first = str(original).strip().splitlines()[0] if str(original).strip() else type(exc).__name__
    return re.sub(r"^\([^)]*\)\s*", "", first)


def query_sql(
    session: Session, statement: str, *, scope: Scope = LOCAL, timeout: float = 60.0
) -> SqlResult:
    """Run one read-only ``SELECT`` over the views; a statement that writes, does not parse or
    names an unknown column is ``Invalid`` with the database's own message."""
    sql, params = _wrapped(statement, scope)
    session.rollback()  # a fresh transaction, so READ ONLY is its first statement
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    raw = connection.connection.driver_connection
    query = text(sql)
    if params:
        query = query.bindparams(bindparam("orgs", expanding=True))
    try:
        if sqlite:  # on the driver's connection: the pragma must not begin a transaction
            raw.execute("PRAGMA query_only = ON")  # type: ignore[union-attr]
        else:
            connection.execute(text("SET TRANSACTION READ ONLY"))
            connection.execute(text(f"SET LOCAL statement_timeout = {int(timeout * 1000)}"))
        result = connection.execute(query, params)
        columns = list(result.keys())
        rows = [[_cell(value) for value in row] for row in result]
    except (DBAPIError, StatementError) as exc:
        raise Invalid(f"SQL refused: {_message(exc)}") from exc
    finally:
        if sqlite:  # the pragma belongs to the pooled connection, not to the transaction
            raw.execute("PRAGMA query_only = OFF")  # type: ignore[union-attr]
        session.rollback()
    return SqlResult(columns, rows)
