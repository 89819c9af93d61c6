"""What every /fusion module shares: the error shape, envelopes, bodies and list queries."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from cairn.api.errors import ProblemRoute, problem_responses
from cairn.errors import BadRequest
from cairn.processing._listing import filter_query, find, page_query, parse_filters
from cairn.processing._runtime import Runtime

NIL = "00000000-0000-0000-0000-000000000000"


class FusionError(BaseModel):
    """An error, as the Fusion Platform answers it."""

    error_message: str


class FusionRoute(ProblemRoute):
    """Errors on these routes are ``{"error_message": ...}``, as the Fusion SDK reads them."""

    @staticmethod
    def render_problem(body: dict[str, Any], headers: Mapping[str, str] | None) -> Response:
        return JSONResponse(
            {"error_message": body["detail"]}, status_code=body["status"], headers=headers
        )


_ERRORS = problem_responses(FusionError)
for _answer in _ERRORS.values():
    _answer["content"] = {"application/json": _answer["content"].popitem()[1]}
_ERRORS[402] = {**_ERRORS[403], "description": "Not enough credits"}

PREFIX = "/fusion"
# One router for every /fusion module: each registers its routes on it when the package imports
# it. (Included sub-routers would hide the prefix from tools walking ``router.routes``: the body
# limit middleware and the route sweep.)
router = APIRouter(prefix=PREFIX, tags=["fusion"], route_class=FusionRoute, responses=_ERRORS)

ORG = "/organisations/{organisation_id}"
_Row = TypeVar("_Row")
JsonBody = Annotated[dict[str, Any] | None, Body()]


def get_runtime(request: Request) -> Runtime:
    return Runtime.for_app(request.app.state)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

# --- envelopes and bodies ----------------------------------------------------------------------


def _model(model: dict[str, Any] | None, **extras: Any) -> dict[str, Any]:
    return {"model": model, "extras": extras}


def one(shape: Callable[[_Row], dict[str, Any]], row: _Row, **extras: Any) -> dict[str, Any]:
    """One row shown as a record by ``shape``, in the single-object envelope."""
    return _model(shape(row), **extras)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _fields(body: Mapping[str, Any] | None, model: str) -> dict[str, Any]:
    """The ``Model[field]`` keys of a create/update body, as {field: value}."""
    prefix = f"{model}["
    found = {}
    for key, value in (body or {}).items():
        if isinstance(key, str) and key.startswith(prefix) and key.endswith("]"):
            found[key[len(prefix) : -1]] = value
    return found


def _nested(body: Mapping[str, Any] | None, model: str) -> dict[str, Any]:
    """The ``{"Model": {...}}`` object of an action body."""
    inner = (body or {}).get(model)
    if not isinstance(inner, dict):
        raise BadRequest(f"The body needs a '{model}' object.")
    return inner


_ROW = "__row__"


def _keyed(row: Any) -> dict[str, Any]:
    """What ordering and the cursor need of a row, standing in for its record."""
    return {"id": row.id, "created_at": _iso(row.created_at), _ROW: row}


class ListQuery:
    """``limit``, ``reverse``, ``search``, ``filter[...]`` and ``last[...]`` of a list call."""

    def __init__(
        self,
        request: Request,
        limit: Annotated[int, Query(ge=1, le=1000, description="Items per page.")] = 24,
        reverse: Annotated[str, Query(max_length=5, description="'True' for newest first.")] = (
            "False"
        ),
        search: Annotated[
            str | None, Query(max_length=200, description="Case-insensitive text to find.")
        ] = None,
    ) -> None:
        self.limit = limit
        self.reverse = reverse.strip().lower() in ("true", "1")
        self.search = search
        query = dict(request.query_params)
        self.filters = parse_filters(query)
        self.last = {
            k[5:-1]: v for k, v in query.items() if k.startswith("last[") and k.endswith("]")
        }

    def select(
        self,
        session: Session,
        query: Select[Any],
        columns: Mapping[str, ColumnElement[Any]],
        shape: Callable[[Any], dict[str, Any]],
        *,
        search_fields: Sequence[str] = ("name",),
    ) -> dict[str, Any]:
        """One page of a query's rows: filters on ``columns`` run in the database, and, when
        no filter or search is left for the records, the order, cursor and limit too (only
        the page's rows are read and shaped)."""
        query, left = filter_query(query, columns, self.filters)
        if not left and not self.search:
            rows, last = page_query(
                session,
                query,
                order=columns["created_at"],
                identity=columns["id"],
                limit=self.limit,
                reverse=self.reverse,
                last=self.last,
            )
            return {"list": [shape(row) for row in rows], "last": last, "extras": {}}
        return self.page(
            session.scalars(query).all(), shape, search_fields=search_fields, filters=left
        )

    def page(
        self,
        rows: Iterable[_Row],
        shape: Callable[[_Row], dict[str, Any]],
        *,
        search_fields: Sequence[str] = ("name",),
        filters: Sequence[tuple[str, str, str]] | None = None,
    ) -> dict[str, Any]:
        """One page of ``rows`` shown as records by ``shape``, in the list envelope.

        Filters and search look at the records, so then every row is shaped; without them,
        only the page's rows are (by their ``created_at`` and ``id``, the records' order), so
        `execute` then `executions?reverse=True&limit=1` stays cheap however many ran.
        """
        filters = self.filters if filters is None else filters
        plain = not filters and not self.search
        records = [_keyed(row) if plain else shape(row) for row in rows]
        found = find(
            records,
            filters=filters,
            search=self.search,
            search_fields=search_fields,
            limit=self.limit,
            reverse=self.reverse,
            last=self.last,
        )
        items = [shape(r[_ROW]) for r in found.items] if plain else found.items
        return {"list": items, "last": found.last, "extras": {}}


ListDep = Annotated[ListQuery, Depends()]
