"""The services on offer: every plugin's ``register_services`` and ``register_dispatchers``,
the built-ins included."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cairn.errors import Invalid, NotFound
from cairn.plugins import call_hook, get_plugin_manager
from cairn.processing.ssd import Dispatcher, Service

__all__ = ["all_dispatchers", "all_services", "get_dispatcher", "get_service", "latest_services"]

BUILTIN = "cairn.processing.builtin"


def _contributed(hook: str) -> list[Any]:
    """What every plugin's ``hook`` returns (one per id), in a stable order (name, version)."""
    manager = get_plugin_manager()
    if not manager.has_plugin(BUILTIN):
        import cairn.processing.builtin as builtin

        if not manager.is_registered(builtin):
            manager.register(builtin, name=BUILTIN)
    found: dict[str, Any] = {}
    for contributed in call_hook(hook):
        for service in contributed or ():
            found.setdefault(service.id, service)
    return sorted(found.values(), key=lambda s: (s.name, s.version, s.id))


def all_services() -> list[Service]:
    """Every version of every service, in a stable order (name, then version)."""
    return _contributed("register_services")


def all_dispatchers() -> list[Dispatcher]:
    """Every dispatcher service, in a stable order (name, then version)."""
    return _contributed("register_dispatchers")


def get_dispatcher(ssd_id: str | None = None, *, name: str | None = None) -> Dispatcher:
    """The newest dispatcher of ``ssd_id`` (or, without one, named ``name``)."""
    for dispatcher in reversed(all_dispatchers()):
        if (ssd_id is not None and dispatcher.ssd_id == ssd_id) or (
            ssd_id is None and name is not None and dispatcher.name == name
        ):
            return dispatcher
    raise Invalid(f"Unknown dispatcher {ssd_id or name!r}.")


def latest_services() -> list[Service]:
    """Only the newest version of each ``ssd_id``."""
    newest: dict[str, Service] = {}
    for service in all_services():
        kept = newest.get(service.ssd_id)
        if kept is None or service.version > kept.version:
            newest[service.ssd_id] = service
    return sorted(newest.values(), key=lambda s: (s.name, s.id))


def get_service(service_id: str, services: Sequence[Service] | None = None) -> Service:
    for service in services if services is not None else all_services():
        if service.id == service_id:
            return service
    raise NotFound("Service not found.")
