"""End to end: a real server process, driven through the CLI and the Python SDK."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from cairn import client, errors
from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e

EMAIL, PASSWORD = "ada@example.org", "Analytical-Engine-1843"


@pytest.fixture(scope="module")
def ada(server: Server) -> Server:
    assert server.cli("admin", "create-org", "--name", "Babbage Lab").returncode == 0
    made = server.cli(
        "admin",
        "create-user",
        "--email",
        EMAIL,
        "--password",
        PASSWORD,
        "--org",
        "Babbage Lab",
        "--json",
    )
    assert made.returncode == 0, made.stderr
    granted = server.cli(
        "admin", "grant-credits", "--org", "Babbage Lab", "--amount", "500", "--json"
    )
    assert json.loads(granted.stdout)["balance"] == 500
    return server


def test_sdk_login_organisations_and_credits(ada: Server) -> None:
    with client.login(email=EMAIL, password=PASSWORD, api_url=ada.url) as me:
        _check_account(me)


def _check_account(me: client.User) -> None:
    assert me.email == EMAIL
    me.update(given_name="Ada", family_name="Lovelace")
    assert me.given_name == "Ada"
    orgs = list(me.organisations)
    assert [o.name for o in orgs] == ["Babbage Lab"]
    first, matches = me.find_organisations(name="babb")
    assert first is not None and first.id == orgs[0].id and len(list(matches)) == 1
    none, empty = me.find_organisations(name="Zzz")
    assert none is None and list(empty) == []
    assert first.credits.balance == 500
    first.update(description="Computing since 1843")
    assert first.description == "Computing since 1843"


def test_sdk_errors_are_typed(ada: Server) -> None:
    with pytest.raises(errors.Unauthorized) as caught:
        client.login(email=EMAIL, password="Wrong-password-1", api_url=ada.url)
    assert caught.value.status_code == 401  # type: ignore[attr-defined]
    with client.login(email=EMAIL, password=PASSWORD, api_url=ada.url) as me:
        with pytest.raises(errors.NotFound):
            me.organisation("00000000-0000-0000-0000-000000000000")
        with pytest.raises(errors.WeakPassword) as weak:
            me.change_password(old=PASSWORD, new="short")
    assert "at least 8 characters" in weak.value.detail["unmet"]


def test_cli_login_whoami_and_token_file(ada: Server) -> None:
    logged = ada.cli("login", "--email", EMAIL, "--password", PASSWORD)
    assert logged.returncode == 0, logged.stderr
    token_file = Path(ada.env["XDG_CONFIG_HOME"]) / "cairn" / "credentials.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    who = ada.cli("whoami", "--json")
    assert who.returncode == 0 and json.loads(who.stdout)["email"] == EMAIL
    orgs = json.loads(ada.cli("orgs", "list", "--json").stdout)
    assert orgs[0]["name"] == "Babbage Lab"
    credits = json.loads(ada.cli("orgs", "credits", orgs[0]["id"], "--json").stdout)
    assert credits["balance"] == 500
    members = json.loads(ada.cli("orgs", "members", orgs[0]["id"], "--json").stdout)
    assert [(m["email"], m["privilege"]) for m in members] == [(EMAIL, "manage")]
    alone = ada.cli("orgs", "grant", orgs[0]["id"], members[0]["user_id"], "view")
    assert alone.returncode != 0 and "manage" in alone.stderr  # the last manager stays
    bad = ada.cli("login", "--email", EMAIL, "--password", "Wrong-password-1")
    assert bad.returncode == 3 and "Invalid email" in bad.stderr
    assert ada.cli("logout").returncode == 0
    assert ada.cli("whoami").returncode == 3


def test_admin_commands_report_clear_errors(ada: Server) -> None:
    weak = ada.cli("admin", "create-user", "--email", "x@example.org", "--password", "weak")
    assert weak.returncode == 2 and "upper-case" in weak.stderr
    assert "Traceback" not in weak.stderr
    missing = ada.cli(
        "admin", "add-member", "--email", EMAIL, "--org", "Nowhere", "--privilege", "view"
    )
    assert missing.returncode == 4 and "No organisation named" in missing.stderr
    wrong = ada.cli(
        "admin", "add-member", "--email", EMAIL, "--org", "Babbage Lab", "--privilege", "root"
    )
    assert wrong.returncode == 2


def test_seed_demo_is_idempotent(ada: Server) -> None:
    first = json.loads(ada.cli("admin", "seed-demo", "--json").stdout)
    second = json.loads(ada.cli("admin", "seed-demo", "--json").stdout)
    assert first["created"] is True and second["created"] is False
    with client.login(email=first["email"], password=first["password"], api_url=ada.url) as me:
        assert next(iter(me.organisations)).credits.balance == 1000
