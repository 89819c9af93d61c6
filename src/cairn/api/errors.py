"""Error mapping: one class-to-status table, one handler rendering RFC 9457 problem+json."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from cairn import errors

__all__ = ["PROBLEM_RESPONSES", "Problem", "install_error_handlers", "problem", "status_for"]

STATUS: Mapping[type[errors.CairnError], int] = {
    errors.BadRequest: 400,
    errors.Invalid: 422,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PaymentRequired: 402,
    errors.TooLarge: 413,
    errors.IntegrityError: 500,
    errors.CairnError: 500,
}

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (plus arXiv's ``reason`` on /filemanager)."""

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable error code, e.g. not-found, weak-password.")
    errors: Any | None = Field(default=None, description="Per-field details, when there are.")
    reason: str | None = None


def _documented(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        "model": Problem,
        "description": description,
        "content": {PROBLEM_JSON: {"schema": schema}},
    }


# Documented on every route, so clients (and schemathesis) know the error shapes.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("Bad request"),
    401: _documented("Missing, wrong, expired or revoked credentials"),
    403: _documented("Not allowed (privilege or workspace state)"),
    404: _documented("Not found, or another organisation's"),
    409: _documented("Conflicts with the current state"),
    413: _documented("Request body over the limit"),
    422: _documented("Invalid input"),
}
COMPAT_PREFIXES = ("/filemanager/",)


def status_for(exc: errors.CairnError) -> int:
    """The status of the nearest class in ``exc``'s MRO that the table names."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    code: str,
    path: str = "",
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """An RFC 9457 problem; on compatibility routes (``path``) also arXiv's ``reason``."""
    body = {"type": f"/problems/{code}", "title": title, "status": status, "detail": detail}
    body["code"] = code
    body.update(extra)
    if path.startswith(COMPAT_PREFIXES):
        body["reason"] = detail
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _cairn_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.CairnError)
    status = status_for(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    extra: dict[str, Any] = {"errors": exc.detail} if exc.detail is not None else {}
    return problem(
        status,
        exc.title,
        exc.message,
        code=exc.code,
        path=request.url.path,
        headers=headers,
        **extra,
    )


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in details)
    return problem(
        422,
        "Invalid input",
        summary or "Invalid request.",
        code="invalid",
        path=request.url.path,
        errors=details,
    )


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized", 413: "too-large"}.get(
        exc.status_code, "http-error"
    )
    headers = dict(exc.headers) if exc.headers else None
    return problem(
        exc.status_code,
        str(exc.detail),
        str(exc.detail),
        code=code,
        path=request.url.path,
        headers=headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.CairnError, _cairn_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
