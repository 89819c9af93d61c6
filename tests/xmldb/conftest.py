"""XML database fixtures: a member, an open session through the in-process API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories import Member

PERSONS = """<persons>
   <person><name>John</name><nick>Joe</nick></person>
   <person><name>Mike</name></person>
   <person><name nick="Tom">Tomas</name></person>
   <person><name>Mark</name><nick>Mark</nick></person>
   <person><name nick="Sam">Samuel</name></person>
</persons>"""
PETS = "<pets><cat>Tom</cat><dog>Sam</dog></pets>"


class Api:
    """Calls on one XML session of one member, answering parsed JSON."""

    def __init__(self, client: TestClient, member: Member) -> None:
        self.client = client
        self.member = member
        answer = client.post(
            "/api/v1/xml/sessions",
            json={"database": member.organisation_id},
            headers=member.headers,
        )
        assert answer.status_code == 201, answer.text
        self.sid = answer.json()["id"]
        self.base = f"/api/v1/xml/sessions/{self.sid}"

    def call(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        answer = self.client.request(
            method, self.base + path, headers=self.member.headers, **kwargs
        )
        assert answer.status_code == status, answer.text
        return (
            answer.json() if answer.content and "json" in answer.headers["content-type"] else answer
        )

    def load(self, name: str, content: str, collection: str | None = None) -> Any:
        body = {"name": name, "content": content, "collection": collection}
        return self.call("POST", "/documents", 201, json=body)

    def query(self, query: str, status: int = 200, **body: Any) -> Any:
        return self.call("POST", "/statements", status, json={"query": query, **body})

    def lite(self, query: str) -> str:
        text: str = self.query(query, lite=True)["text"]
        return text


@pytest.fixture
def api(client: TestClient, make_member: Callable[..., Member]) -> Api:
    return Api(client, make_member())
