"""A read-only attribute bag over one JSON object from the server."""

from __future__ import annotations

from typing import Any

from cairn.client._client import Client


class Model:
    """Attributes come from the server's JSON; ``to_dict()`` gives them back."""

    def __init__(self, client: Client, data: dict[str, Any]) -> None:
        self._client = client
        self._data = dict(data)

    def _refresh(self, data: dict[str, Any]) -> None:
        self._data = dict(data)

    def __getattr__(self, name: str) -> Any:
        data = self.__dict__.get("_data", {})
        if name in data:
            return data[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def __repr__(self) -> str:
        label = self._data.get("name") or self._data.get("email") or self._data.get("id")
        return f"<{type(self).__name__} {label!r}>"
