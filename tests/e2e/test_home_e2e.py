"""The landing page of a real server names the address `cairn serve --port` listens on."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e


def test_home_names_the_address_serve_listens_on(server: Server) -> None:
    page = httpx.get(f"{server.url}/", timeout=30)
    assert page.status_code == 200
    assert f"cairn login --api-url {server.url}</code>" in page.text
