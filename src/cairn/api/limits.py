"""Request body size limits, enforced on the bytes actually received (413 above)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cairn.api.errors import problem
from cairn.errors import TooLarge

__all__ = ["BodyLimitMiddleware"]


class BodyLimitMiddleware:
    """Refuse bodies over the limit: multipart uploads get ``upload_limit``, the rest ``limit``.

    A declared Content-Length over the limit is refused before reading; a chunked or lying body
    is cut off when the count passes the limit.
    """

    def __init__(self, app: ASGIApp, *, limit: int, upload_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        limit = self.upload_limit if content_type.startswith("multipart/") else self.limit
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = problem(
                413,
                TooLarge.title,
                f"Request body is over the limit of {limit} bytes.",
                code=TooLarge.code,
                path=scope.get("path", ""),
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # HTTPException, not TooLarge: FastAPI turns other errors raised while it
                    # reads the body into a generic 400.
                    raise HTTPException(413, f"Request body is over the limit of {limit} bytes.")
            return message

        await self.app(scope, counting_receive, send)
