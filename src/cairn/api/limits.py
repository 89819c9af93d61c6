"""Request body size limits, by route, enforced on the bytes actually received (413 above).

Upload routes (marked in their OpenAPI, see ``cairn.api.uploads``) take the upload limit; every
other route, and a path no route serves, takes the small request limit, whatever its
Content-Type says. A JSON route therefore never buffers more than the request limit.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn.api.errors import render_problem
from cairn.api.uploads import is_upload_route
from cairn.errors import TooLarge

__all__ = ["BodyLimitMiddleware"]


class BodyLimitMiddleware:
    """Refuse bodies over the limit of their route.

    A declared Content-Length over the limit is refused before reading; a chunked or lying body
    is cut off when the count passes the limit.
    """

    def __init__(
        self, app: ASGIApp, *, routes: Sequence[BaseRoute], limit: int, upload_limit: int
    ) -> None:
        self.app = app
        self.routes = routes
        self.limit = limit
        self.upload_limit = upload_limit

    def _route(self, scope: Scope) -> BaseRoute | None:
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self._route(scope)
        limit = self.upload_limit if is_upload_route(route) else self.limit
        message = f"Request body is over the limit of {limit} bytes."
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = render_problem(
                {**scope, "route": route}, 413, TooLarge.title, message, code=TooLarge.code
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message_ = await receive()
            if message_["type"] == "http.request":
                received += len(message_.get("body", b""))
                if received > limit:
                    # HTTPException, not TooLarge: FastAPI turns other errors raised while it
                    # reads the body into a generic 400.
                    raise HTTPException(413, message)
            return message_

        await self.app(scope, counting_receive, send)
