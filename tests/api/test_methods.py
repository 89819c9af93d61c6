"""405 answers carry ``Allow`` naming every method the path accepts, across all its routes."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.api.sweep_areas import ERROR_SHAPES

ALL = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def test_every_405_lists_exactly_the_methods_the_path_answers(client: TestClient) -> None:
    """Each documented path is tried with every method (no credentials, so nothing changes);
    every 405 among the answers must name exactly the methods that were not refused."""
    paths = [
        re.sub(r"\{[^}]+\}", "1", template)
        for template in client.get("/openapi.json").json()["paths"]
    ]
    for path in ["/", *paths]:
        answers = {method: client.request(method, path) for method in ALL}
        served = {method for method, answer in answers.items() if answer.status_code != 405}
        refused = [answer for answer in answers.values() if answer.status_code == 405]
        assert served and refused, path
        for answer in refused:
            allowed = {m.strip() for m in answer.headers["allow"].split(",")}
            assert allowed == served, (path, answer.request.method)
            shape = next((c for p, c in ERROR_SHAPES.items() if path.startswith(p)), None)
            if shape is None:
                assert answer.headers["content-type"] == "application/problem+json"
            elif answer.request.method != "HEAD":  # a compat router's own shape (HEAD: no body)
                assert shape(answer) is None, (path, answer.text)


def test_options_on_a_path_with_several_routes(client: TestClient) -> None:
    answer = client.options("/filemanager/api/1")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, POST, DELETE"
    assert answer.json()["code"] == "method-not-allowed"


def test_pages_outside_the_schema_say_so_too(client: TestClient) -> None:
    assert client.delete("/").headers["allow"] == "GET"
    assert client.post("/docs").headers["allow"] == "GET, HEAD"
