"""Serving the app with uvicorn, plus the connection limits uvicorn's httptools protocol lacks.

uvicorn bounds concurrency (``limit_concurrency``, answered 503 once a request's head is read)
and idle time *after* a response (``timeout_keep_alive``). It does not bound the size of a
request head under httptools (whose parser joins a long header line chunk by chunk, so one
100 MB line held the event loop for 20 s), the number of header fields, a new connection that
never sends anything, a head that never completes, or a body that stops arriving. The
:class:`GuardedHttpToolsProtocol` adds those, keeping httptools (chosen for upload speed): body
bytes pass straight to the parser, and the body deadline is re-armed from a timestamp rather
than a timer per chunk.
"""

from __future__ import annotations

import asyncio
import gc
from asyncio import TimerHandle
from typing import Any, ClassVar

import httptools
import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from cairn.config import Settings

__all__ = ["GuardedHttpToolsProtocol", "protocol_with", "serve_app"]

HEAD_TOO_LARGE = "Request header fields too large."
TOO_MANY_HEADERS = "Too many request header fields."
HEAD_TOO_SLOW = "Request head not received in time."
BODY_STALLED = "Request body stalled."
BUSY = "Too many connections; try again shortly."


class _TooManyHeaders(Exception):
    """Raised from the parser's header callback: stops parsing before the app sees the request."""


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with head size/count limits and idle, head and body timeouts.

    A connection is *reading a head* from when it opens, and again from the end of each request
    body; it must finish the head within ``header_timeout`` (armed at connect and at each
    response) and within ``max_header_bytes``. While a body arrives, a gap longer than
    ``body_timeout`` cuts it, unless the server itself paused reading (flow control) or has not
    yet sent ``100 Continue``.
    """

    limits: ClassVar[Settings]
    """The connection settings (``max_header_bytes``, ``header_timeout`` …); see
    :func:`protocol_with`."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        # uvicorn types it int (whole seconds); call_later takes any float.
        self.timeout_keep_alive = self.limits.keep_alive_timeout  # type: ignore[assignment]
        self._reading_head = True
        self._head_bytes = 0
        self._header_count = 0
        self._last_read = 0.0
        self._head_timer: TimerHandle | None = None
        self._body_timer: TimerHandle | None = None

    # --- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            # Refuse now rather than after the head: an idle socket over the limit would
            # otherwise hold a file descriptor until it times out.
            self._refuse(503, BUSY)
            return
        # uvicorn arms the idle timer only after a response; a silent new socket needs it too.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel(self._head_timer)
        self._cancel(self._body_timer)
        self._head_timer = self._body_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        self._last_read = self.loop.time()
        view = memoryview(data)
        limit = self.limits.max_header_bytes
        while view:
            if self._reading_head:
                # Feed a head at most up to the limit, so an endless header line costs the
                # parser no more than ``limit`` bytes.
                room = limit - self._head_bytes
                if room <= 0:
                    self._refuse(431, HEAD_TOO_LARGE)
                    return
                piece, view = view[:room], view[room:]
                self._head_bytes += len(piece)
            else:
                piece, view = view, view[:0]
            if not self._feed(piece):
                return
        if self._reading_head and self._head_bytes >= limit:
            self._refuse(431, HEAD_TOO_LARGE)

    def _feed(self, data: memoryview) -> bool:
        """Parse ``data``; False once the connection is being closed."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _TooManyHeaders):
                self._refuse(431, TOO_MANY_HEADERS)
            else:
                self._bad_request()
            return False
        except httptools.HttpParserError:
            self._bad_request()
            return False
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return False
        return not self.transport.is_closing()

    def _bad_request(self) -> None:
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self.send_400_response(message)

    # --- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._header_count = 0
        super().on_message_begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_headers:
            raise _TooManyHeaders
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._cancel(self._head_timer)
        self._head_timer = None
        super().on_headers_complete()
        self._body_timer = self.loop.call_later(self.limits.body_timeout, self._check_body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._reading_head = True
        self._head_bytes = 0
        self._cancel(self._body_timer)
        self._body_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._reading_head and self._head_timer is None:
            self._start_head_timer()

    # --- timers ----------------------------------------------------------------------------

    @staticmethod
    def _cancel(timer: TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()

    def _start_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._reading_head:
            return
        if self._head_bytes == 0:
            self.transport.close()  # idle: nothing to answer
        else:
            self._refuse(408, HEAD_TOO_SLOW)

    def _check_body(self) -> None:
        self._body_timer = None
        if self.transport.is_closing() or self._reading_head:
            return
        now = self.loop.time()
        if self.flow.read_paused or self.cycle.waiting_for_100_continue:
            self._last_read = now  # the server is the side that waits
        idle = now - self._last_read
        if idle < self.limits.body_timeout:
            self._body_timer = self.loop.call_later(
                self.limits.body_timeout - idle, self._check_body
            )
            return
        self._refuse(408, BODY_STALLED)

    # --- refusing --------------------------------------------------------------------------

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with ``message`` unless a response already started, then close."""
        client = "{}:{}".format(*self.client) if self.client else "client"
        self.logger.warning("%s: %d %s", client, status, message)
        cycle = self.cycle
        started = False
        if cycle is not None and not cycle.response_complete:
            # The app's receive() now reports a disconnect and its send() is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
            started = cycle.response_started
        if not started:
            body = message.encode("ascii")
            content = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                content.extend([name, b": ", value, b"\r\n"])
            content.extend(
                [
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
            self.transport.write(b"".join(content))
        self.transport.close()


def protocol_with(settings: Settings) -> type[GuardedHttpToolsProtocol]:
    """A :class:`GuardedHttpToolsProtocol` bound to ``settings``' limits (uvicorn takes a class)."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": settings})


def serve_app(app: Any, settings: Settings) -> None:
    """Run ``app`` with uvicorn on ``settings``' host and port, under its connection limits,
    until stopped."""
    # The app's modules and objects live until exit: freezing them spares every full garbage
    # collection from walking them again (an upload's per-file objects cause several, #13 §8).
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        http=protocol_with(settings),
        # uvicorn answers 503 once open connections reach the limit, counting the new one.
        limit_concurrency=settings.max_connections + 1,
        backlog=settings.backlog,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level="info",
        timeout_graceful_shutdown=5,
    )
