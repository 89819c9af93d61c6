"""Services: the latest version of each, every version, dispatchers, one service."""

from __future__ import annotations

from typing import Any

from cairn.api.compat.fusion._common import (
    ORG,
    ListDep,
    _model,
    router,
)
from cairn.api.compat.fusion.records import (
    service_record,
)
from cairn.api.deps import ActorDep
from cairn.processing import service

# --- services ----------------------------------------------------------------------------------


@router.get(ORG + "/services/latest")
def list_latest_services(organisation_id: str, actor: ActorDep, query: ListDep) -> dict[str, Any]:
    """The newest version of every service (filter by `name`, `keywords`, `ssd_id`, `id`)."""
    services = service.list_services(actor, organisation_id)
    return query.page(services, service_record, search_fields=("name", "keywords"))


@router.get(ORG + "/services")
def list_all_services(organisation_id: str, actor: ActorDep, query: ListDep) -> dict[str, Any]:
    """Every version of every service."""
    services = service.list_services(actor, organisation_id, latest=False)
    return query.page(services, service_record, search_fields=("name", "keywords"))


@router.get(ORG + "/services/dispatchers")
def list_dispatchers(organisation_id: str, actor: ActorDep, query: ListDep) -> dict[str, Any]:
    """Dispatcher services: what a process may add to send its outputs on (`Local folder`)."""
    dispatchers = service.list_dispatchers(actor, organisation_id)
    return query.page(dispatchers, service_record, search_fields=("name", "keywords"))


@router.get(ORG + "/services/{service_id}")
def get_service(organisation_id: str, service_id: str, actor: ActorDep) -> dict[str, Any]:
    """One service version."""
    return _model(service_record(service.show_service(actor, organisation_id, service_id)))
