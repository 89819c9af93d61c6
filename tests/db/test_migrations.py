"""Migrations build exactly the tables the models declare, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from sqlalchemy.orm import Session

import cairn.db.models  # noqa: F401
from cairn.db import Base, referenced_blobs
from cairn.db.base import UtcDateTime
from tests.factories import make_org, make_user


def _managed(name: str | None, type_: str, parent_names: object) -> bool:
    """What an area builds by hand in its migration (e.g. SQLite FTS5) is not modelled."""
    return not (type_ in ("table", "index") and name in Base.metadata.info.get("unmanaged", ()))


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": _managed})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_datetimes_come_back_aware_in_utc(session: Session) -> None:
    org = make_org(session)
    session.expire_all()
    assert org.created_at.tzinfo is not None
    assert org.created_at.utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="naive"):
        UtcDateTime().process_bind_param(datetime(2026, 1, 1), None)  # type: ignore[arg-type]
    plus_two = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert UtcDateTime().process_bind_param(plus_two, None) == datetime(  # type: ignore[arg-type]
        2026, 1, 1, 10, tzinfo=UTC
    )


def test_referenced_blobs_is_empty_without_content(session: Session) -> None:
    make_user(session)
    assert referenced_blobs(session) == set()
