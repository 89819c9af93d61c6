"""The landing page: HTML at `/` with the docs links and version, the demo login only while
the demo user exists, and no entry in the OpenAPI schema."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

import cairn
from cairn.config import Settings
from cairn.demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.factories import make_user


def test_home_is_a_page_linking_the_docs(client: TestClient, settings: Settings) -> None:
    page = client.get("/", headers={"Host": "attacker.example"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for link in ('href="docs"', 'href="openapi.json"'):
        assert link in page.text
    assert f"cairn {cairn.__version__}" in page.text
    assert f"--api-url {settings.base_url}" in page.text and "attacker" not in page.text
    assert DEMO_EMAIL not in page.text and DEMO_PASSWORD not in page.text
    assert "/" not in client.get("/openapi.json").json()["paths"]


def test_home_shows_the_demo_login_once_the_demo_user_exists(
    client: TestClient, session: Session
) -> None:
    make_user(session, email=DEMO_EMAIL, password=DEMO_PASSWORD)
    session.commit()
    page = client.get("/")
    assert page.status_code == 200
    assert DEMO_EMAIL in page.text and DEMO_PASSWORD in page.text


def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    assert cairn.__version__ == version("cairn")
