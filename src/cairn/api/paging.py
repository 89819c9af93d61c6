"""The one page shape every list endpoint returns, and its query parameters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

__all__ = ["Page", "PageDep", "PageParams", "page_of"]

T = TypeVar("T")
MAX_PAGE_SIZE = 500
MAX_PAGE = 10**9  # keeps the row offset inside a 64-bit integer


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int


class PageParams(BaseModel):
    page: int
    page_size: int


def _page_params(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1.")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")] = 50,
) -> PageParams:
    return PageParams(page=page, page_size=page_size)


PageDep = Annotated[PageParams, Depends(_page_params)]


def page_of(
    items: Sequence[Any], total: int, params: PageParams, convert: Callable[[Any], T]
) -> Page[T]:
    return Page(
        items=[convert(item) for item in items],
        total=total,
        page=params.page,
        page_size=params.page_size,
    )
