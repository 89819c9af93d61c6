"""Error rendering: every error becomes one RFC 9457 problem, shaped by the route that failed.

The status comes from ``cairn.errors.OUTCOMES``. A compatibility router whose foreign contract
has its own error shape (arXiv's ``reason``; later the signed archive's envelope and Fusion's
``error_message``) says so with a ``route_class`` whose ``render_problem`` returns that shape;
the handlers here never look at URLs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from cairn import errors

__all__ = [
    "PROBLEM_JSON",
    "PROBLEM_RESPONSES",
    "Problem",
    "ProblemRoute",
    "install_error_handlers",
    "render_problem",
]

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """An error, as RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable error code, e.g. not-found, weak-password.")
    errors: Any | None = Field(default=None, description="Per-field details, when there are.")


def _documented(description: str, model: type[BaseModel] = Problem) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {
        "model": model,
        "description": description,
        "content": {PROBLEM_JSON: {"schema": schema}},
    }


def problem_responses(model: type[BaseModel] = Problem) -> dict[int | str, dict[str, Any]]:
    """The error answers documented on every route, so clients (and schemathesis) know them."""
    return {
        400: _documented("Bad request", model),
        401: _documented("Missing, wrong, expired or revoked credentials", model),
        403: _documented("Not allowed (privilege or workspace state)", model),
        404: _documented("Not found, or another organisation's", model),
        409: _documented("Conflicts with the current state", model),
        413: _documented("Request body over the limit", model),
        422: _documented("Invalid input", model),
    }


PROBLEM_RESPONSES = problem_responses()


class ProblemRoute(APIRoute):
    """A route whose errors are plain problem+json; compatibility routes override the shape."""

    @staticmethod
    def render_problem(body: dict[str, Any], headers: Mapping[str, str] | None) -> Response:
        return JSONResponse(
            body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers
        )


def render_problem(
    scope: Scope,
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    """The problem answer for ``scope``, in the shape its route (if any) asks for."""
    body = {"type": f"/problems/{code}", "title": title, "status": status, "detail": detail}
    body["code"] = code
    body.update(extra)
    route = scope.get("route")
    render = route.render_problem if isinstance(route, ProblemRoute) else None
    return (render or ProblemRoute.render_problem)(body, headers)


def _cairn_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.CairnError)
    status = errors.outcome_for(exc).status
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    extra: dict[str, Any] = {"errors": exc.detail} if exc.detail is not None else {}
    return render_problem(
        request.scope, status, exc.title, exc.message, code=exc.code, headers=headers, **extra
    )


def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in details)
    return render_problem(
        request.scope,
        422,
        "Invalid input",
        summary or "Invalid request.",
        code="invalid",
        errors=details,
    )


_HTTP_CODES = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized", 413: "too-large"}


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return render_problem(
        request.scope,
        exc.status_code,
        str(exc.detail),
        str(exc.detail),
        code=_HTTP_CODES.get(exc.status_code, "http-error"),
        headers=dict(exc.headers) if exc.headers else None,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.CairnError, _cairn_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
