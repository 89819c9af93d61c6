"""SDK objects for the logged-in user, their organisations and credits."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cairn.client._client import DEFAULT_API_URL, Client
from cairn.client._model import Resource
from cairn.client.credentials import SavedLogin, load_login, save_login
from cairn.client.workspaces import Workspace, Workspaces
from cairn.errors import NotFound

if TYPE_CHECKING:
    from cairn.client.processing import DataItem, Process, Service

__all__ = [
    "CreditEntry",
    "Credits",
    "Member",
    "Organisation",
    "User",
    "connect",
    "from_saved_login",
    "login",
]


class CreditEntry(Resource):
    id: str
    amount: int
    reason: str
    created_at: datetime


class Credits(Resource):
    """An organisation's balance, and its whole ledger through ``entries``."""

    organisation_id: str
    balance: int

    @property
    def entries(self) -> Iterator[CreditEntry]:
        """Every ledger entry, newest first, fetched page by page."""
        for item in self._client.paginate(f"/api/v1/organisations/{self.organisation_id}/credits"):
            yield CreditEntry.bind(self._client, item)


class Member(Resource):
    """A member of an organisation and the privilege they hold there."""

    user_id: str
    email: str
    privilege: str
    created_at: datetime


class Organisation(Resource):
    """An organisation you belong to, and your privilege in it (view, execute or manage)."""

    id: str
    name: str
    description: str | None = None
    created_at: datetime
    privilege: str | None = None

    def update(self, **fields: Any) -> None:
        """Change fields (needs the ``manage`` privilege); the object refreshes in place."""
        self._update(self._client.send_json("PATCH", f"/api/v1/organisations/{self.id}", fields))

    @property
    def members(self) -> Iterator[Member]:
        """The organisation's members and their privileges, oldest first."""
        for item in self._client.paginate(f"/api/v1/organisations/{self.id}/members"):
            yield Member.bind(self._client, item)

    def grant(self, user_id: str, privilege: str) -> Member:
        """Give a member ``view``, ``execute`` or ``manage`` (needs ``manage``); the last
        manager cannot step down."""
        body = self._client.send_json(
            "PUT", f"/api/v1/organisations/{self.id}/members/{user_id}", {"privilege": privilege}
        )
        return Member.bind(self._client, body)

    @property
    def credits(self) -> Credits:
        """The organisation's credit balance and ledger, fetched now."""
        return Credits.bind(
            self._client, self._client.get_json(f"/api/v1/organisations/{self.id}/credits")
        )

    @property
    def workspaces(self) -> Iterator[Workspace]:
        """This organisation's upload workspaces, newest first."""
        return self._client.workspaces.list(organisation_id=self.id)

    # Processing, as the Fusion Platform manual's organisation offers it (cairn.client.processing).

    @property
    def credit(self) -> int:
        """The organisation's credit balance now."""
        return self.credits.balance

    @property
    def data(self) -> Iterator[DataItem]:
        """The organisation's uploaded data items."""
        return self._client.processing.data(self.id)

    def find_data(self, **by: str | None) -> tuple[DataItem | None, Iterator[DataItem]]:
        """``(first or None, all)`` by ``name=`` prefix, ``id=`` or ``search=``."""
        return self._client.processing.find_data(self.id, **by)

    def create_data(
        self,
        *,
        name: str,
        file_type: str | None = None,
        files: Sequence[str | Path] = (),
        wait: bool = False,
    ) -> DataItem:
        """Upload ``files`` as one data item; ``wait``: until they are analysed."""
        return self._client.processing.create_data(
            self.id, name=name, file_type=file_type, files=files, wait=wait
        )

    @property
    def services(self) -> Iterator[Service]:
        """The newest version of every service."""
        return self._client.processing.services(self.id)

    def find_services(self, **by: str | None) -> tuple[Service | None, Iterator[Service]]:
        """``(first or None, all)`` by ``name=``, ``keyword=``, ``id=``, ``ssd_id=``,
        ``search=``."""
        return self._client.processing.find_services(self.id, **by)

    def new_process(self, *, name: str, service: Service | str) -> Process:
        """A process template for ``service``: ``update`` it, then ``create`` it."""
        return self._client.processing.new_process(self.id, name=name, service=service)

    @property
    def processes(self) -> Iterator[Process]:
        return self._client.processing.processes(self.id)

    def find_processes(self, **by: str | None) -> tuple[Process | None, Iterator[Process]]:
        """``(first or None, all)`` by ``name=`` prefix, ``id=`` or ``search=``."""
        return self._client.processing.find_processes(self.id, **by)


class User(Resource):
    """You, logged in: your account's fields, and the way to everything else."""

    id: str
    email: str
    given_name: str | None = None
    family_name: str | None = None
    phone: str | None = None
    notify_by_email: bool = True
    notify_by_sms: bool = False
    created_at: datetime
    expires_at: datetime | None = None

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
        expires_at = self.expires_at
        self._update(self._client.send_json("PATCH", "/api/v1/users/me", fields))
        self.expires_at = expires_at

    def change_password(self, *, old: str, new: str) -> None:
        self._client.send_json("POST", "/api/v1/users/me/password", {"old": old, "new": new})

    @property
    def organisations(self) -> Iterator[Organisation]:
        """Every organisation you belong to."""
        for item in self._client.paginate("/api/v1/organisations"):
            yield Organisation.bind(self._client, item)

    def find_organisations(
        self, *, name: str | None = None, id: str | None = None
    ) -> tuple[Organisation | None, Iterator[Organisation]]:
        """``(first match or None, iterator over all matches)``; ``name`` is a case-insensitive
        prefix, ``id`` one organisation's id."""
        if id is not None:
            try:
                found = [self.organisation(id)]
            except NotFound:
                found = []
            return (found[0] if found else None), iter(found)
        params = {"name": name} if name else {}
        matches = [
            Organisation.bind(self._client, item)
            for item in self._client.paginate("/api/v1/organisations", params)
        ]
        return (matches[0] if matches else None), iter(matches)

    def organisation(self, organisation_id: str) -> Organisation:
        return Organisation.bind(
            self._client, self._client.get_json(f"/api/v1/organisations/{organisation_id}")
        )

    @property
    def workspaces(self) -> Workspaces:
        """Upload workspaces: ``me.workspaces.upload("paper.tar.gz")``."""
        return self._client.workspaces

    def save_login(self) -> None:
        """Keep this login where the CLI and ``from_saved_login()`` find it."""
        assert self._client.token is not None
        expires = self.expires_at.isoformat() if self.expires_at else ""
        save_login(SavedLogin(self._client.base_url, self._client.token, expires, self.email))

    def logout(self) -> None:
        """Revoke the token on the server."""
        self._client.send_json("POST", "/api/v1/auth/logout")


def login(
    *,
    password: str,
    email: str | None = None,
    user_id: str | None = None,
    id: str | None = None,
    api_url: str = DEFAULT_API_URL,
    client: Client | None = None,
) -> User:
    """Log in by email or user id (``id`` is the manual's other name for it) and return your
    ``User``; wrong credentials raise ``cairn.errors.Unauthorized``."""
    user_id = user_id if user_id is not None else id
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
    return User.bind(client, {**answer["user"], "expires_at": answer["expires_at"]})


def connect(token: str, *, api_url: str = DEFAULT_API_URL, client: Client | None = None) -> User:
    """Resume a session from a token."""
    client = client or Client(api_url)
    client.token = token
    return User.bind(client, client.get_json("/api/v1/users/me"))


def from_saved_login(api_url: str | None = None, *, client: Client | None = None) -> User:
    """Resume the login ``cairn login`` saved; ``Unauthorized`` when there is none."""
    saved = load_login()
    user = connect(saved.token, api_url=api_url or saved.api_url, client=client)
    if saved.expires_at:
        user.expires_at = datetime.fromisoformat(saved.expires_at)
    return user
