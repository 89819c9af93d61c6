"""`filter[field__modifier]` evaluated by the database: on SQLite and PostgreSQL every list
answers what the rendered records filtered in Python (``_listing.find``) answer, page by page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cairn.api.compat.fusion.records import DATA_COLUMNS, PROCESS_COLUMNS
from cairn.processing._listing import filter_query, find
from cairn.processing.models import DataItem
from tests.factories import Member
from tests.processing.fusion_helpers import create_process, org_path, upload_data

NAMES = ["Glasgow", "glasgow west", "Lake District", "Lake_50%", "Москва", "Ab\\c"]


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member(credits=5)


def _all(client: TestClient, member: Member, path: str, **params: str) -> list[dict[str, Any]]:
    """Every item of a list, following its cursor ``limit`` at a time."""
    items: list[dict[str, Any]] = []
    query: dict[str, str] = {"limit": "2", **params}
    while True:
        answer = client.get(f"{org_path(member)}/{path}", params=query, headers=member.headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items += body["list"]
        if body["last"] is None:
            return items
        query = {**query, **{f"last[{k}]": v for k, v in body["last"].items()}}


def _filters(created: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    middle = created[len(created) // 2]["created_at"]
    return [
        ("name", "eq", "Glasgow"),
        ("name", "ne", "Glasgow"),
        ("name", "begins_with", "Lake"),
        ("name", "begins_with", "lake"),  # case-sensitive
        ("name", "contains", "as"),
        ("name", "contains", "_50%"),  # LIKE's wildcards are plain text here
        ("name", "contains", "\\"),
        ("name", "contains", "оск"),
        ("name", "not_contains", "a"),
        ("name", "in", "Glasgow,Москва,nobody"),
        ("name", "between", "Glasgow,Lake"),
        ("name", "lt", "L"),
        ("name", "ge", "glasgow"),
        ("created_at", "ge", middle),
        ("created_at", "lt", middle),
        ("id", "eq", created[0]["id"]),
        ("file_type", "null", ""),
        ("file_type", "not_null", ""),
        ("process_execution_id", "null", ""),
    ]


def test_data_filters_in_sql_answer_what_python_does(client: TestClient, member: Member) -> None:
    created = []
    for name in NAMES:
        answer = client.post(
            f"{org_path(member)}/data", headers=member.headers, json={"Data[name]": name}
        )
        created.append(answer.json()["model"])
    everything = _all(client, member, "data/uploaded", limit="1000")
    assert [d["name"] for d in everything] == NAMES
    for name, modifier, value in _filters(created):
        for reverse in ("False", "True"):
            key = f"filter[{name}__{modifier}]"
            got = _all(client, member, "data/uploaded", reverse=reverse, **{key: value})
            expected = find(
                everything,
                filters=[(name, modifier, value)],
                limit=1000,
                reverse=reverse == "True",
            ).items
            assert [d["id"] for d in got] == [d["id"] for d in expected], (key, value, reverse)
    # A real narrowing, not everything: the oracle is not trivially equal.
    lake = _all(client, member, "data/uploaded", **{"filter[name__begins_with]": "Lake"})
    assert [d["name"] for d in lake] == ["Lake District", "Lake_50%"]


def test_numeric_and_boolean_filters_on_processes(client: TestClient, member: Member) -> None:
    data_id = upload_data(client, member)
    for days in (3, 14, 30):
        process = create_process(client, member, data_id)
        path = f"{org_path(member)}/processes/{process['id']}"
        patched = client.patch(
            path, headers=member.headers, json={"Process[output_storage_period]": days}
        )
        assert patched.status_code == 200, patched.text
    everything = _all(client, member, "processes", limit="1000")
    for modifier, value in (
        ("eq", "14"),
        ("ne", "14"),
        ("gt", "3"),
        ("le", "14"),
        ("in", "3,30"),
        ("between", "4,30"),
        ("eq", "14.0"),
    ):
        key = f"filter[output_storage_period__{modifier}]"
        got = _all(client, member, "processes", **{key: value})
        expected = find(
            everything, filters=[("output_storage_period", modifier, value)], limit=1000
        ).items
        assert [p["id"] for p in got] == [p["id"] for p in expected], (modifier, value)
    assert len(_all(client, member, "processes", **{"filter[output_storage_period__gt]": "3"})) == 2


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("filter[output_storage_period__gt]", "soon", "takes a number"),
        ("filter[created_at__ge]", "yesterday", "ISO 8601"),
        ("filter[price__begins_with]", "1", "text fields only"),
        ("filter[name__between]", "a", "two comma-separated values"),
        ("filter[name__near]", "a", "Unknown filter"),
        ("last[created_at]", "not a date", "ISO 8601"),
    ],
)
def test_bad_filters_are_422_not_500(
    client: TestClient, member: Member, key: str, value: str, message: str
) -> None:
    params = {key: value}
    if key.startswith("last["):
        params["last[id]"] = "x"
    answer = client.get(f"{org_path(member)}/processes", params=params, headers=member.headers)
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["error_message"]


def test_filters_on_stored_fields_leave_nothing_for_python(member: Member) -> None:
    """The fields the SDK filters on are columns: the database evaluates them."""
    query = select(DataItem)
    for name, modifier in (("id", "eq"), ("name", "begins_with"), ("name", "contains")):
        _, left = filter_query(query, DATA_COLUMNS, [(name, modifier, "x")])
        assert left == []
    _, left = filter_query(query, PROCESS_COLUMNS, [("has_executions", "eq", "True")])
    assert left == [("has_executions", "eq", "True")]  # a rendered field: Python's
