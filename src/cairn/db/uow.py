"""The unit of work: short transactions on demand, for workflows that do slow work between them.

A request or CLI command that does one thing gets one session (``session_scope``). A workflow
that unpacks an upload or builds a package must not hold a transaction meanwhile (SQLite has
one writer at a time), so its service function is given a ``UnitOfWork`` and opens a
transaction for each short step: read what it needs, do the slow work with none open, then
re-read the state under a row lock before it applies the result.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

from cairn.db.engine import read_scope, session_scope

__all__ = ["UnitOfWork"]


class UnitOfWork:
    """Opens transactions from one session factory; each commits on success, else rolls back.

    Every transaction gets a fresh session, so nothing read in an earlier one (an identity-map
    copy of a row another request has changed since) can leak into a later decision.
    """

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with session_scope(self._factory) as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A transaction that only reads (no write lock on SQLite)."""
        with read_scope(self._factory) as session:
            yield session
