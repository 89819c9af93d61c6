"""The glue the XML router uses: the app's one :class:`XmlServer`, and one locked call per
request on a session (a session's requests run one at a time)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from cairn.accounts.service import Actor
from cairn.db import UnitOfWork
from cairn.xmldb.schemas import SessionRead, statement_answer

if TYPE_CHECKING:
    from cairn.xmldb._session import XmlServer, XmlSession

__all__ = ["XmlSession", "preload", "run", "server", "session_read", "statement_answer"]

T = TypeVar("T")
_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    # Saxon and lxml load with the first XML request, not with the app (issue #13, RSS goal)
    if name == "XmlSession":
        from cairn.xmldb._session import XmlSession

        return XmlSession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def server(request: Any) -> XmlServer:
    """The app's XML server, made on first use (sessions live in this process)."""
    return _server_of(request.app.state)


def preload(state: Any) -> None:
    """Start parsing every stored document in the background (``Settings.xml_preload``)."""
    threading.Thread(
        target=_server_of(state).preload, name="cairn-xml-preload", daemon=True
    ).start()


def _server_of(state: Any) -> XmlServer:
    found: XmlServer | None = getattr(state, "xmldb", None)
    if found is None:
        with _lock:
            found = getattr(state, "xmldb", None)
            if found is None:
                from cairn.xmldb._session import XmlServer

                found = XmlServer(
                    UnitOfWork(state.sessionmaker),
                    state.blobs,
                    idle_timeout=state.settings.xml_session_idle_timeout.total_seconds(),
                )
                state.xmldb = found
    return found


def run(
    request: Any,
    actor: Actor,
    session_id: str,
    call: Callable[[XmlSession], Any],
    shape: Callable[[Any], T],
) -> T:
    xs = server(request).session(actor, session_id)
    with xs.lock:
        return shape(call(xs))


def session_read(xs: XmlSession) -> SessionRead:
    return SessionRead(
        id=xs.id,
        database_id=xs.database_id,
        organisation_id=xs.organisation_id,
        transaction=xs.txn.serial if xs.txn else None,
    )
