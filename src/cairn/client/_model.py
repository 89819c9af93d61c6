"""The base of every SDK object: typed, validated fields from the server's JSON, and the client
that fetched them (so methods can call the server again)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, PrivateAttr

if TYPE_CHECKING:
    from cairn.client._client import Client

__all__ = ["Resource"]


class Resource(BaseModel):
    """Fields are declared on each subclass, so editors and mypy see them; fields a newer
    server adds are ignored rather than refused."""

    model_config = ConfigDict(extra="ignore")

    _client: Client = PrivateAttr()

    @classmethod
    def bind(cls, client: Client, data: Any) -> Self:
        resource = cls.model_validate(data)
        resource._client = client
        return resource

    def _update(self, data: Any) -> None:
        """Refresh every field in place from a newer answer about the same object."""
        fresh = type(self).model_validate(data)
        for name in type(self).model_fields:
            setattr(self, name, getattr(fresh, name))

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values."""
        return self.model_dump(mode="json")
