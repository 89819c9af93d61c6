"""One way to read a page of rows: the total count and one window of the ordered query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

__all__ = ["paginate"]

T = TypeVar("T")


def paginate(
    session: Session, query: Select[T], *, page: int, page_size: int
) -> tuple[Sequence[T], int]:
    """``(items on page number page, counting from 1, total)`` for an ordered ``query``."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    items = session.scalars(query.offset((page - 1) * page_size).limit(page_size)).all()
    return items, int(total or 0)
