"""SDK objects for the logged-in user, their organisations and credits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cairn.client._client import DEFAULT_API_URL, Client
from cairn.client._model import Model
from cairn.client.workspaces import Workspaces

__all__ = ["Credits", "Organisation", "User", "login"]


class Organisation(Model):
    """An organisation you belong to: ``id``, ``name``, ``description``, ``privilege``."""

    def update(self, **fields: Any) -> None:
        """Change fields (needs the ``manage`` privilege); the object refreshes in place."""
        self._refresh(self._client.send_json("PATCH", f"/api/v1/organisations/{self.id}", fields))

    @property
    def credits(self) -> Credits:
        """The organisation's credit balance and ledger, fetched now."""
        body = self._client.get_json(f"/api/v1/organisations/{self.id}/credits")
        return Credits(self._client, body)


class Credits(Model):
    """``balance`` (an int) and ``entries``, an iterator over the whole ledger."""

    @property
    def entries(self) -> Iterator[dict[str, Any]]:
        return self._client.paginate(f"/api/v1/organisations/{self.organisation_id}/credits")


class User(Model):
    """You, logged in: attributes of your account plus the way to everything else."""

    def __init__(self, client: Client, data: dict[str, Any], *, expires_at: str = "") -> None:
        super().__init__(client, data)
        self.expires_at = expires_at

    def __enter__(self) -> User:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool (``with login(...) as me:`` does it for you)."""
        self._client.close()

    @property
    def client(self) -> Client:
        return self._client

    @property
    def token(self) -> str | None:
        return self._client.token

    def update(self, **fields: Any) -> None:
        """Change given_name, family_name, email, phone or notification preferences."""
        self._refresh(self._client.send_json("PATCH", "/api/v1/users/me", fields))

    def change_password(self, *, old: str, new: str) -> None:
        self._client.send_json("POST", "/api/v1/users/me/password", {"old": old, "new": new})

    @property
    def organisations(self) -> Iterator[Organisation]:
        """Every organisation you belong to."""
        for item in self._client.paginate("/api/v1/organisations"):
            yield Organisation(self._client, item)

    def find_organisations(
        self, *, name: str | None = None
    ) -> tuple[Organisation | None, Iterator[Organisation]]:
        """``(first match or None, iterator over all matches)``; ``name`` is a case-insensitive
        prefix."""
        params = {"name": name} if name else {}
        matches = [
            Organisation(self._client, item)
            for item in self._client.paginate("/api/v1/organisations", params)
        ]
        return (matches[0] if matches else None), iter(matches)

    def organisation(self, organisation_id: str) -> Organisation:
        return Organisation(
            self._client, self._client.get_json(f"/api/v1/organisations/{organisation_id}")
        )

    @property
    def workspaces(self) -> Workspaces:
        """Upload workspaces: ``me.workspaces.upload("paper.tar.gz")``."""
        return Workspaces(self._client)

    def logout(self) -> None:
        self._client.send_json("POST", "/api/v1/auth/logout")


def login(
    *,
    password: str,
    email: str | None = None,
    user_id: str | None = None,
    api_url: str = DEFAULT_API_URL,
    client: Client | None = None,
) -> User:
    """Log in by email or user id and return your ``User``; wrong credentials raise
    ``cairn.errors.Unauthorized``."""
    owned = client is None
    client = client or Client(api_url)
    body: dict[str, Any] = {"password": password}
    if email is not None:
        body["email"] = email
    if user_id is not None:
        body["user_id"] = user_id
    try:
        answer = client.send_json("POST", "/api/v1/auth/login", body)
    except BaseException:
        if owned:
            client.close()
        raise
    client.token = answer["token"]
    return User(client, answer["user"], expires_at=answer["expires_at"])


def connect(token: str, *, api_url: str = DEFAULT_API_URL) -> User:
    """Resume a session from a saved token (what the CLI does)."""
    client = Client(api_url, token=token)
    return User(client, client.get_json("/api/v1/users/me"))
