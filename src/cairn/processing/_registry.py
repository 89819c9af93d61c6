"""The services on offer: every plugin's ``register_services``, the built-ins included."""

from __future__ import annotations

from collections.abc import Sequence

from cairn.errors import NotFound
from cairn.plugins import call_hook, get_plugin_manager
from cairn.processing.ssd import Service

__all__ = ["all_services", "get_service", "latest_services"]

BUILTIN = "cairn.processing.builtin"


def all_services() -> list[Service]:
    """Every version of every service, in a stable order (name, then version)."""
    manager = get_plugin_manager()
    if not manager.has_plugin(BUILTIN):
        import cairn.processing.builtin as builtin

        if not manager.is_registered(builtin):
            manager.register(builtin, name=BUILTIN)
    found: dict[str, Service] = {}
    for contributed in call_hook("register_services"):
        for service in contributed or ():
            found.setdefault(service.id, service)
    return sorted(found.values(), key=lambda s: (s.name, s.version, s.id))


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
