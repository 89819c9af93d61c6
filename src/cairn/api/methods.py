"""``Allow`` on every 405: all the methods the request's path accepts (RFC 9110, 15.5.6).

Starlette's router answers 405 from the first route whose path matches, so ``Allow`` named
that one route's methods only: ``PUT /api/v1/workspaces/1`` was told ``Allow: GET`` though
``DELETE`` works too. Here the 405 handler asks every route about every method instead.
"""

from __future__ import annotations

import inspect

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

__all__ = ["allowed_methods", "install_allow_header"]

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> list[str]:
    """The methods for which some route fully matches ``scope``'s path, in ``METHODS`` order."""
    allowed = []
    for method in METHODS:
        probe = {**scope, "method": method}
        if any(route.matches(probe)[0] is Match.FULL for route in routes):
            allowed.append(method)
    return allowed


def install_allow_header(app: FastAPI) -> None:
    """Give 405 answers the full ``Allow``; the body stays whatever ``app`` renders for an
    ``HTTPException`` (install the error handlers first)."""
    render = app.exception_handlers.get(HTTPException, http_exception_handler)

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        allowed = allowed_methods(app.router.routes, request.scope)
        if allowed:
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
        response = render(request, exc)
        if inspect.isawaitable(response):
            response = await response
        assert isinstance(response, Response)
        return response

    app.add_exception_handler(405, method_not_allowed)
