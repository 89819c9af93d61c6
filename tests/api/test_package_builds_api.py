"""The compressed size in the summary (issue #13, section 6), in-process: after each change the
server builds the package in the background, and the summary shows null only while it runs.
Tests wait on the build itself (``PackageBuilder.wait``) or hold it back with an event."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cairn.workspaces import service
from tests.archives import tar_gz
from tests.factories import Member

API = "/api/v1/workspaces"
FM = "/filemanager/api"
TEX = b"\\documentclass{article}\n\\begin{document}Hi\\end{document}\n"


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member()


def builder(client: TestClient) -> service.PackageBuilder:
    found: service.PackageBuilder = client.app.state.package_builder  # type: ignore[attr-defined]
    return found


def summary(client: TestClient, member: Member, wid: int) -> tuple[Any, Any]:
    native = client.get(f"{API}/{wid}", headers=member.headers).json()
    arxiv = client.get(f"{FM}/{wid}", headers=member.headers).json()
    return native["package_size"], arxiv["upload_compressed_size"]


def test_every_change_fills_the_compressed_size(client: TestClient, member: Member) -> None:
    made = client.post(
        f"{API}/upload",
        headers=member.headers,
        files={"file": ("p.tar.gz", tar_gz({"main.tex": TEX, "a.txt": b"a\n" * 500}))},
    )
    wid = made.json()["id"]
    builder(client).wait(wid)
    package = client.get(f"{API}/{wid}/package", headers=member.headers)
    assert summary(client, member, wid) == (len(package.content),) * 2
    log = [e["message"] for e in client.get(f"{API}/{wid}/log", headers=member.headers).json()]
    assert log.count(f"package built ({len(package.content)} bytes)") == 1  # the GET reused it

    changes: list[Callable[[], Any]] = [
        lambda: client.delete(f"{API}/{wid}/files/a.txt", headers=member.headers),
        lambda: client.post(
            f"{FM}/{wid}", headers=member.headers, files={"file": ("b.txt", b"b\n")}
        ),
        lambda: client.post(f"{API}/{wid}/checkpoints", headers=member.headers),
        lambda: client.post(
            f"{API}/{wid}/files", headers=member.headers, files={"file": ("c.txt", b"c\n")}
        ),
    ]
    for change in changes:
        assert change().status_code < 300
        builder(client).wait(wid)
        package = client.get(f"{API}/{wid}/package", headers=member.headers)
        assert summary(client, member, wid) == (len(package.content),) * 2
    checkpoint = client.get(f"{API}/{wid}/checkpoints", headers=member.headers).json()["items"][0]
    restored = client.get(
        f"{FM}/{wid}/restore_checkpoint/{checkpoint['checksum']}", headers=member.headers
    )
    assert restored.status_code == 200
    builder(client).wait(wid)
    package = client.get(f"{API}/{wid}/package", headers=member.headers)
    assert summary(client, member, wid) == (len(package.content),) * 2
    assert client.delete(f"{API}/{wid}/files", headers=member.headers).status_code == 200
    builder(client).wait(wid)
    assert summary(client, member, wid) == (None, None)  # no files, no package


class HeldBack:
    """The server's own build, held back until the test lets it run."""

    def __init__(self, app: FastAPI) -> None:
        self.real: service.PackageBuilder = app.state.package_builder
        self.started = threading.Event()
        self.go = threading.Event()
        self.builder = service.PackageBuilder(self.build)

    def build(self, workspace_id: int) -> None:
        self.started.set()
        assert self.go.wait(timeout=60), "the test never let the build run"
        self.real._build(workspace_id)


@pytest.fixture
def held(app: FastAPI) -> Iterator[HeldBack]:
    held = HeldBack(app)
    app.state.package_builder = held.builder
    try:
        yield held
    finally:
        held.go.set()
        held.builder.close()
        app.state.package_builder = held.real


def test_the_size_is_null_only_while_the_build_runs(
    client: TestClient, member: Member, held: HeldBack
) -> None:
    made = client.post(f"{FM}", headers=member.headers, files={"file": ("main.tex", TEX)}).json()
    wid = made["upload_id"]
    assert made["upload_compressed_size"] is None
    assert held.started.wait(timeout=60)  # the upload queued a build, and it has started
    assert summary(client, member, wid) == (None, None)
    head = client.head(f"{API}/{wid}/package", headers=member.headers)
    assert head.status_code == 200 and "content-length" not in head.headers  # built nothing
    held.go.set()
    builder(client).wait(wid)
    size = summary(client, member, wid)[0]
    assert isinstance(size, int) and size > 0
    assert client.head(f"{API}/{wid}/package", headers=member.headers).headers[
        "content-length"
    ] == str(size)


def test_a_summary_without_a_size_and_no_build_starts_one(
    client: TestClient, member: Member, app: FastAPI, make_member: Callable[..., Member]
) -> None:
    """As after a restart that lost a queued build: the owner's summary notices and builds;
    a stranger's request is refused before it can start anything."""
    real = app.state.package_builder
    lost = service.PackageBuilder(lambda workspace_id: None)
    app.state.package_builder = lost
    try:
        wid = client.post(
            f"{API}/upload", headers=member.headers, files={"file": ("main.tex", TEX)}
        ).json()["id"]
        lost.wait_idle()
    finally:
        app.state.package_builder = real
        lost.close()
    stranger = make_member()
    assert client.get(f"{API}/{wid}", headers=stranger.headers).status_code == 404
    assert client.get(f"{FM}/{wid}", headers=stranger.headers).status_code == 404
    assert not real.building(wid)
    first = client.get(f"{API}/{wid}", headers=member.headers).json()
    assert first["package_size"] is None  # shown as it is, and a build is now queued
    real.wait(wid)
    assert summary(client, member, wid)[0] is not None
