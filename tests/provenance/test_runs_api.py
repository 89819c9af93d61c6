"""`/api/v1/runs` in-process: an organisation's runs (uploads and package builds are recorded
as activities), their lineage, hostile input, other organisations' ids, and the SDK."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from cairn.client import Client
from cairn.errors import NotFound
from tests.archives import tar_gz
from tests.factories import Member


def _package(client: TestClient, member: Member, files: dict[str, bytes]) -> int:
    answer = client.post(
        "/api/v1/workspaces/upload",
        headers=member.headers,
        files={"file": ("paper.tar.gz", tar_gz(files))},
    )
    assert answer.status_code == 201, answer.text
    workspace_id: int = answer.json()["id"]
    built = client.get(f"/api/v1/workspaces/{workspace_id}/package", headers=member.headers)
    assert built.status_code == 200
    return workspace_id


PACKAGES = {"script": "workspace.package"}  # the builds, not the uploads before them


def test_a_package_build_is_a_run_with_its_files(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    workspace_id = _package(client, member, {"main.tex": b"\\documentclass{article}\n"})
    assert client.get("/api/v1/runs", headers=member.headers).json()["total"] == 2
    page = client.get("/api/v1/runs", params=PACKAGES, headers=member.headers).json()
    assert page["total"] == 1
    (brief,) = page["items"]
    assert brief["kind"] == "workspace.package" and brief["status"] == "ok"
    run = client.get(f"/api/v1/runs/{brief['run_id']}", headers=member.headers).json()
    assert [u["path"] for u in run["used"]] == ["main.tex"]
    assert run["generated"][0]["path"] == f"workspace-{workspace_id}.tar.gz"
    assert run["generated"][0]["archived"] is True
    again = client.get(f"/api/v1/workspaces/{workspace_id}/package", headers=member.headers)
    assert again.status_code == 200
    listed = client.get("/api/v1/runs", params=PACKAGES, headers=member.headers).json()
    assert listed["total"] == 1  # cached
    by_seq = client.get(f"/api/v1/runs/{brief['seq']}", headers=member.headers)
    assert by_seq.json()["run_id"] == brief["run_id"]


def test_trace_joins_two_builds_through_shared_files(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    _package(client, member, {"data.csv": b"1,2\n", "a.txt": b"a"})
    _package(client, member, {"data.csv": b"1,2\n", "b.txt": b"b"})
    first, second = sorted(
        client.get("/api/v1/runs", params=PACKAGES, headers=member.headers).json()["items"],
        key=lambda r: r["seq"],
    )
    down = client.get(
        f"/api/v1/runs/{first['run_id']}/trace",
        params={"direction": "both"},
        headers=member.headers,
    ).json()
    # The second build shares data.csv; the uploads generated the files the builds used.
    assert {first["run_id"], second["run_id"]} <= {r["run_id"] for r in down["runs"]}
    assert {r["kind"] for r in down["runs"]} == {"workspace.package", "workspace.upload"}
    by_path = client.get(
        f"/api/v1/runs/{first['run_id']}/trace", params={"join": "path"}, headers=member.headers
    )
    assert by_path.status_code == 200
    bad = client.get(
        f"/api/v1/runs/{first['run_id']}/trace",
        params={"direction": "sideways"},
        headers=member.headers,
    )
    assert bad.status_code == 422


@pytest.mark.parametrize(
    "params",
    [{"start": "last week"}, {"seq": "x:y"}, {"order_by": "password"}, {"page_size": 0}],
)
def test_bad_selectors_are_422_problems(
    client: TestClient, make_member: Callable[..., Member], params: dict[str, object]
) -> None:
    member = make_member()
    answer = client.get("/api/v1/runs", params=params, headers=member.headers)
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_another_organisation_sees_none_of_it(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    owner, stranger = make_member(), make_member()
    _package(client, owner, {"secret.txt": b"s"})
    run_id = client.get("/api/v1/runs", headers=owner.headers).json()["items"][0]["run_id"]
    assert client.get("/api/v1/runs", headers=stranger.headers).json()["total"] == 0
    for path in (f"/api/v1/runs/{run_id}", f"/api/v1/runs/{run_id}/trace"):
        assert client.get(path, headers=stranger.headers).status_code == 404
    listed = client.get(
        "/api/v1/runs",
        params={"organisation_id": owner.organisation_id},
        headers=stranger.headers,
    )
    assert listed.status_code == 404
    assert client.get("/api/v1/runs").status_code == 401
    assert client.get("/api/v1/runs/" + "x" * 65, headers=owner.headers).status_code == 422


def test_the_sdk_lists_gets_and_traces(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member()
    _package(client, member, {"x.txt": b"x"})
    sdk = Client("http://testserver", token=member.token, http_client=client)
    (run,) = list(sdk.runs.list(script="workspace.package"))
    full = sdk.runs.get(run.run_id)
    assert [f.path for f in full.used] == ["x.txt"]
    traced = full.trace()["runs"]  # the build, and upstream of it the upload of x.txt
    assert [(r["run_id"], r["kind"]) for r in traced][1:] == [(run.run_id, "workspace.package")]
    assert traced[0]["kind"] == "workspace.upload"
    assert list(sdk.runs.list(tag=["nothing"])) == []
    with pytest.raises(NotFound):
        sdk.runs.get("00000000-0000-0000-0000-000000000000")


def test_versions_of_a_path_in_the_organisation(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    member, stranger = make_member(), make_member()
    _package(client, member, {"data.csv": b"1,2\n"})
    _package(client, member, {"data.csv": b"1,2\n", "more.txt": b"x"})
    _package(client, member, {"data.csv": b"3,4\n"})
    api = "/api/v1/runs/versions"
    answer = client.get(api, params={"path": "data.csv"}, headers=member.headers)
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert [len(v["used_by"]) for v in found] == [2, 1]
    assert [len(v["generated_by"]) for v in found] == [2, 1]  # the uploads that brought it
    assert all(r["script"].startswith("upload of") for v in found for r in v["generated_by"])
    assert {v["sha256"] for v in found} == {
        hashlib.sha256(b"1,2\n").hexdigest(),
        hashlib.sha256(b"3,4\n").hexdigest(),
    }
    # another organisation's path is not found; so is a path no run saw
    for caller, path in ((stranger, "data.csv"), (member, "absent.csv")):
        missing = client.get(api, params={"path": path}, headers=caller.headers)
        assert missing.status_code == 404, missing.text
        assert missing.headers["content-type"].startswith("application/problem+json")
    assert client.get(api, headers=member.headers).status_code == 422  # no path given
    sdk = Client("http://testserver", token=member.token, http_client=client)
    assert sdk.runs.versions("data.csv") == found
    with pytest.raises(NotFound):
        Client("http://testserver", token=stranger.token, http_client=client).runs.versions(
            "data.csv"
        )
