"""`cairn login`, `logout`, `whoami` and `cairn orgs`: your account on a server."""

from __future__ import annotations

import typer
from rich.console import Console

from cairn import client as sdk
from cairn import errors
from cairn.cli._common import CairnTyper, JsonOption, emit, remote_client
from cairn.client.credentials import credentials_path, forget_login

out = Console(stderr=True)
orgs = CairnTyper(help="Your organisations, their members and their credits.")

ApiUrl = typer.Option(None, "--api-url", envvar="CAIRN_API_URL", help="Server URL.")


def login(
    email: str | None = typer.Option(None, "--email", help="Log in by email."),
    user_id: str | None = typer.Option(None, "--user-id", help="Or by user id."),
    password: str = typer.Option(
        ..., "--password", prompt=True, hide_input=True, envvar="CAIRN_PASSWORD"
    ),
    api_url: str = typer.Option(
        "http://127.0.0.1:8000", "--api-url", envvar="CAIRN_API_URL", help="Server URL."
    ),
) -> None:
    """Log in and keep the token (valid one day) in your config folder, readable only by you."""
    if not (email or user_id):
        email = typer.prompt("Email")
    with sdk.login(email=email, user_id=user_id, password=password, api_url=api_url) as user:
        user.save_login()
    out.print(
        f"Logged in as {user.email} until {user.expires_at} (token in {credentials_path()}).",
        highlight=False,
    )


def logout() -> None:
    """Revoke the saved token on the server and forget it."""
    if credentials_path().exists():
        try:
            with sdk.from_saved_login() as user:
                user.logout()
        except errors.Unauthorized:
            pass  # the token no longer works anyway
        finally:
            forget_login()
    out.print("Logged out.")


def whoami(api_url: str | None = ApiUrl, as_json: bool = JsonOption) -> None:
    """Show the logged-in user."""
    with remote_client(api_url) as client:
        emit(client.get_json("/api/v1/users/me"), as_json=as_json, title="You")


@orgs.command("list")
def list_orgs(
    name: str | None = typer.Option(None, "--name", help="Case-insensitive name prefix."),
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """List your organisations."""
    with remote_client(api_url) as client:
        items = list(client.paginate("/api/v1/organisations", {"name": name} if name else {}))
    emit(items, as_json=as_json, columns=["id", "name", "privilege"], title="Organisations")


@orgs.command("credits")
def credits(
    organisation_id: str = typer.Argument(..., help="Organisation id."),
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """Show an organisation's credit balance and latest ledger entries."""
    with remote_client(api_url) as client:
        body = client.get_json(f"/api/v1/organisations/{organisation_id}/credits")
    if as_json:
        emit(body, as_json=True)
        return
    emit(
        body["items"],
        as_json=False,
        columns=["created_at", "amount", "reason"],
        title=f"Balance: {body['balance']} credits",
    )


def _organisation(client: sdk.Client, organisation_id: str) -> sdk.Organisation:
    return sdk.Organisation.bind(
        client, client.get_json(f"/api/v1/organisations/{organisation_id}")
    )


@orgs.command("members")
def members(
    organisation_id: str = typer.Argument(..., help="Organisation id."),
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """List an organisation's members and their privileges."""
    with remote_client(api_url) as client:
        items = [m.to_dict() for m in _organisation(client, organisation_id).members]
    emit(items, as_json=as_json, columns=["user_id", "email", "privilege"], title="Members")


@orgs.command("grant")
def grant(
    organisation_id: str = typer.Argument(..., help="Organisation id."),
    user_id: str = typer.Argument(..., help="The member's user id (from `cairn orgs members`)."),
    privilege: str = typer.Argument(..., help="view, execute or manage."),
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """Give a member another privilege (needs manage; the last manager cannot step down)."""
    with remote_client(api_url) as client:
        member = _organisation(client, organisation_id).grant(user_id, privilege)
    emit(member.to_dict(), as_json=as_json, title="Member")
