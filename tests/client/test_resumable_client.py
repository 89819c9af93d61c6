"""The SDK's resumable uploads against the in-process app: chunks, progress, and resuming by
itself after a lost answer or a connection that failed before the server got anything. The
failures are injected into the client's ``request`` (the network is outside this test), the
server is the real app."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from cairn import errors
from cairn.client import Client
from cairn.client import workspaces as sdk
from tests.archives import tar_gz
from tests.factories import Member


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member()


@pytest.fixture
def sdk_client(client: TestClient, member: Member) -> Iterator[Client]:
    yield Client("http://testserver", token=member.token, http_client=client)


def test_a_large_file_goes_resumably_with_progress(
    sdk_client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(300_000)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    monkeypatch.setattr(sdk, "DEFAULT_RESUMABLE_CHUNK", 100_000)
    patches: list[str] = []
    real = sdk_client._http.request

    def spy(method: str, url: Any, **kwargs: Any) -> httpx.Response:
        patches.append(method)
        return real(method, url, **kwargs)

    monkeypatch.setattr(sdk_client._http, "request", spy)
    seen: list[int] = []
    # Under the threshold a plain upload; the threshold lowered, the resumable protocol.
    workspace = sdk_client.workspaces.upload(
        source, progress=seen.append, resumable_threshold=len(data)
    )
    assert "PATCH" in patches and "POST" in patches
    assert sum(seen) == len(data)
    assert [(f.path, f.size) for f in workspace.files] == [("big.bin", len(data))]
    plain = source.with_name("small.bin")
    plain.write_bytes(b"small\n")
    patches.clear()
    workspace.upload(plain)
    assert "PATCH" not in patches


def test_an_archive_resumes_after_a_lost_answer_and_a_failed_send(
    sdk_client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tar_gz({f"part{i}.txt": os.urandom(40_000).hex().encode() for i in range(4)})
    source = tmp_path / "parts.tar.gz"
    source.write_bytes(archive)
    real = sdk_client._http.request
    calls = {"PATCH": 0}

    def flaky(method: str, url: Any, **kwargs: Any) -> httpx.Response:
        if method == "PATCH":
            calls["PATCH"] += 1
            if calls["PATCH"] == 2:  # the server stores the bytes, the answer is lost
                real(method, url, **kwargs)
                raise httpx.ReadError("connection reset")
            if calls["PATCH"] == 4:  # the connection fails before anything is sent
                raise httpx.ConnectError("connection refused")
        return real(method, url, **kwargs)

    monkeypatch.setattr(sdk_client._http, "request", flaky)
    seen: list[int] = []
    workspace = sdk_client.workspaces.create()
    sdk.send_resumable(
        sdk_client, workspace.id, source, {}, progress=seen.append, chunk_size=50_000, pause=0
    )
    workspace.refresh()
    assert sorted(f.path for f in workspace.files) == [f"part{i}.txt" for i in range(4)]
    assert sum(seen) == len(archive)  # the re-sent bytes were taken back from the bar


def test_a_refusal_is_not_retried(sdk_client: Client, tmp_path: Path) -> None:
    source = tmp_path / "a.bin"
    source.write_bytes(b"abc")
    workspace = sdk_client.workspaces.create()
    workspace.lock()
    with pytest.raises(errors.Forbidden):
        workspace.upload(source, resumable=True)


def test_an_upload_given_up_leaves_no_workspace_and_no_partial_file(
    sdk_client: Client, client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(1000))
    real = sdk_client._http.request
    methods: list[str] = []

    def refused(method: str, url: Any, **kwargs: Any) -> httpx.Response:
        methods.append(method)
        if method == "PATCH":  # the user gives up (Ctrl-C) once the upload was created
            raise KeyboardInterrupt
        return real(method, url, **kwargs)

    monkeypatch.setattr(sdk_client._http, "request", refused)
    with pytest.raises(KeyboardInterrupt):
        sdk_client.workspaces.upload(source, resumable=True)
    assert methods.count("DELETE") == 2  # the upload terminated, then the new workspace
    monkeypatch.setattr(sdk_client._http, "request", real)
    states = [w.state for w in sdk_client.workspaces.list()]
    assert states == ["DELETED"], states
    partial = client.app.state.blobs.partial_folder()  # type: ignore[attr-defined]
    assert partial is not None and not any(partial.iterdir())
