"""Storage and post-processing plugins (plugin-config.json) on both databases: real plugin
classes, one registered through cairn's plugin manager in the test, the built-in filesystem
and fsspec storages and the filesystem post-processor, and every way a plugin can fail."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cairn import hookimpl
from cairn.archive._plugin_tasks import POST_PROCESS_ATTEMPTS, document_bytes, run_plugin_tasks
from cairn.archive._worker import EnhanceContext, Worker
from cairn.archive.models import ArchiveContainer, ArchiveEvent, ArchivePluginTask
from cairn.archive.plugins import (
    Container,
    ContainerStatus,
    Document,
    Parameters,
    PluginConfigError,
    Result,
    load_plugins,
)
from cairn.archive.settings import ArchiveSettings
from cairn.config import Settings
from cairn.db import UnitOfWork, utcnow
from cairn.plugins import get_plugin_manager
from tests.archive.helpers import ArchiveClient, upload_form
from tests.archive.pki import LocalPKI, pyhanko_sign

DOCUMENT = b"Keep me somewhere else.\n"


class FlakyStorage:
    """Keeps documents in a dict; fails ``Fail`` times first, by a failure Result or (``Mode``
    raise) by raising, as a plugin on a flaky network share would."""

    saved: ClassVar[dict[str, bytes]] = {}
    calls: ClassVar[int] = 0

    def initialize(self, parameters: Mapping[str, str]) -> None:
        self.fail = int(parameters.get("fail", "0"))  # written "Fail": matched any case
        self.mode = parameters.get("MODE", "result")

    def save(self, container: Container) -> Result[str]:
        type(self).calls += 1
        if type(self).calls <= self.fail:
            if self.mode == "raise":
                raise ConnectionError("share unreachable")
            return Result.failure("share is full")
        assert container.document is not None
        path = f"flaky://{container.id}"
        type(self).saved[path] = container.document.raw
        return Result.success(path)

    def get(self, path: str) -> Result[Document]:
        if path not in self.saved:
            return Result.failure(f"{path} not found")
        return Result.success(Document(self.saved[path]))

    def delete(self, path: str) -> Result[None]:
        return Result.success() if self.saved.pop(path, None) else Result.failure("absent")


class RaisingPostProcessor:
    def initialize(self, parameters: Mapping[str, str]) -> None:
        pass

    async def process_async(self, container: Container) -> Result[None]:
        raise RuntimeError(f"cannot notify about {container.id}")


class RegisteredPlugins:
    """A cairn plugin registering FlakyStorage under a name, as an installed package would."""

    @hookimpl
    def register_archive_storages(self) -> dict[str, type]:
        return {"flaky": FlakyStorage}


@pytest.fixture(autouse=True)
def _environment(pki: LocalPKI, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("CAIRN_ARCHIVE_TRUST_ROOTS", str(pki.roots))
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.setenv("CAIRN_ARCHIVE_PLUGINS", str(folder))
    FlakyStorage.saved, FlakyStorage.calls = {}, 0
    manager = get_plugin_manager()
    plugin = RegisteredPlugins()
    manager.register(plugin, name="test-archive-plugins")
    try:
        yield folder
    finally:
        manager.unregister(plugin)


def _configure(folder: Path, storages: list[dict[str, Any]], post: list[dict[str, Any]]) -> None:
    config = {"Plugins": {"DocumentStorage": storages, "SanConnector": post}}
    (folder / "plugin-config.json").write_text(json.dumps(config), encoding="utf-8")


def _storage(name: str, assembly: str, **extra: Any) -> dict[str, Any]:
    parameters = extra.pop("Parameters", {})
    return {
        "IsEnabled": True,
        "ReadOnly": False,
        "PluginName": name,
        "AssemblyName": assembly,
        "Parameters": parameters,
        **extra,
    }


def _put(client: TestClient, arch: ArchiveClient, pki: LocalPKI, **fields: str) -> Any:
    signs = [pyhanko_sign(pki.rsa_signer, DOCUMENT)]
    return client.post(
        "/api/document/content",
        headers=arch.key_headers,
        **upload_form(arch.storage_id, DOCUMENT, signs, **{"UseArchiveCa": "true", **fields}),
    )


def _events(uow: UnitOfWork, container_id: str) -> list[tuple[str, str | None]]:
    with uow.transaction() as session:
        return [
            (e.kind, e.detail)
            for e in session.scalars(
                select(ArchiveEvent)
                .where(ArchiveEvent.container_id == container_id)
                .order_by(ArchiveEvent.id)
            )
        ]


# plugin-config.json


def test_no_folder_or_no_file_means_no_plugins(tmp_path: Path) -> None:
    assert load_plugins(None).storages == {}
    assert load_plugins(tmp_path).storages == {} and load_plugins(tmp_path).post_processors == {}


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([_storage("", "filesystem")], "PluginName is required"),
        ([_storage("a", "filesystem", Parameters={"DocumentsFolderPath": "d"})] * 2, "used twice"),
        ([_storage("a", "")], "AssemblyName is required"),
        ([_storage("nas_01", "no_such_plugin")], "'nas_01'"),
        ([_storage("nas_01", "tests.archive.nowhere:Storage")], "cannot import"),
        ([_storage("nas_01", "tests.archive.test_plugins:Document")], "has no initialize"),
        ([_storage("nas_01", "filesystem")], "DocumentsFolderPath is required"),
        ([_storage("nas_01", "filesystem", IsEnabled="yes")], "IsEnabled must be true or false"),
    ],
)
def test_a_bad_file_is_an_error_naming_the_entry(
    _environment: Path, entries: list[dict[str, Any]], message: str
) -> None:
    _configure(_environment, entries, [])
    with pytest.raises(PluginConfigError, match=message):
        load_plugins(_environment)


def test_malformed_json_is_an_error(_environment: Path) -> None:
    (_environment / "plugin-config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(PluginConfigError, match=r"plugin-config\.json"):
        load_plugins(_environment)


def test_a_bad_file_stops_the_app_at_start_up(_environment: Path, app: object) -> None:
    _configure(_environment, [_storage("", "filesystem")], [])
    with pytest.raises(PluginConfigError), TestClient(app):  # type: ignore[arg-type]
        pass


def test_parameters_are_matched_case_insensitively() -> None:
    parameters = Parameters({"Folder": "/srv/x"}, base=Path("/base"))
    assert parameters["folder"] == parameters["FOLDER"] == "/srv/x" and "fOlDeR" in parameters
    assert list(parameters) == ["Folder"]
    assert parameters.path("folder") == Path("/srv/x")
    assert Parameters({"Folder": "rel"}, base=Path("/base")).path("FOLDER") == Path("/base/rel")


def test_a_disabled_plugin_is_not_loaded(_environment: Path) -> None:
    # It would fail to initialise (no DocumentsFolderPath), but is never loaded.
    _configure(_environment, [_storage("off_01", "filesystem", IsEnabled=False)], [])
    plugins = load_plugins(_environment)
    assert plugins.storages == {} and list(plugins.disabled) == ["off_01"]


# Choosing a storage plugin on upload


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        (_storage("nas_01", "flaky", IsEnabled=False), "nas_01", "disabled"),
        (_storage("nas_01", "flaky", ReadOnly=True), "nas_01", "read-only"),
        (_storage("nas_01", "flaky"), "nas_02", "Unknown storage plugin 'nas_02' (nas_01)"),
    ],
)
def test_unusable_plugins_are_refused_in_the_envelope(
    _environment: Path,
    client: TestClient,
    arch: ArchiveClient,
    pki: LocalPKI,
    entry: dict[str, Any],
    field: str,
    message: str,
) -> None:
    _configure(_environment, [entry], [])
    answer = _put(client, arch, pki, ArchiveCaPluginName=field)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["data"] is None and body["errorCode"] == "plugin-unavailable"
    assert message in body["errorDescription"]
    assert (
        client.post("/api/document/search", headers=arch.key_headers, json={}).json()["data"][
            "totalRecords"
        ]
        == 0
    )  # nothing was stored


def test_a_plugin_needs_use_archive_ca(
    _environment: Path, client: TestClient, arch: ArchiveClient, pki: LocalPKI
) -> None:
    _configure(_environment, [_storage("nas_01", "flaky")], [])
    answer = _put(client, arch, pki, ArchiveCaPluginName="nas_01", UseArchiveCa="false")
    assert answer.status_code == 422 and "UseArchiveCa=true" in answer.json()["errorDescription"]


def test_the_builtin_filesystem_storage_keeps_the_document(
    _environment: Path,
    client: TestClient,
    arch: ArchiveClient,
    pki: LocalPKI,
    uow: UnitOfWork,
    settings: Settings,
) -> None:
    folder = _environment / "documents"
    parameters = {"documentsfolderpath": "documents"}  # relative: under the plugins folder
    _configure(_environment, [_storage("fs_01", "filesystem", Parameters=parameters)], [])
    container_id = _put(client, arch, pki, ArchiveCaPluginName="fs_01").json()["data"]
    native = client.get(f"/api/v1/archive/containers/{container_id}", headers=arch.member.headers)
    assert native.json()["storage_plugin"] == "fs_01" and native.json()["storage_pending"] is True
    plugins = load_plugins(_environment)
    assert run_plugin_tasks(uow, client.app.state.blobs, plugins) == 1  # type: ignore[attr-defined]
    assert (folder / container_id).read_bytes() == DOCUMENT
    with uow.transaction() as session:
        container = session.get(ArchiveContainer, container_id)
        assert container is not None
        assert container.document_sha256 is None  # the plugin holds it now
        assert container.document_path == str(folder / container_id)
        assert document_bytes(client.app.state.blobs, plugins, container) == DOCUMENT  # type: ignore[attr-defined]
    native = client.get(f"/api/v1/archive/containers/{container_id}", headers=arch.member.headers)
    assert native.json()["storage_pending"] is False
    assert ("stored", "fs_01") in _events(uow, container_id)
    # Enhancement still works without the document in the blob store.
    Worker(
        uow, EnhanceContext(client.app.state.blobs, ArchiveSettings(), settings.data_dir)
    ).run_once()  # type: ignore[attr-defined]
    details = client.get(f"/api/document/{container_id}", headers=arch.key_headers).json()["data"]
    assert details["status"] == 4 and details["isAvailable"] is True


def test_the_builtin_fsspec_storage(_environment: Path) -> None:
    url = f"file://{_environment / 'bucket'}"
    _configure(_environment, [_storage("s3_01", "fsspec", Parameters={"URL": url})], [])
    plugin = load_plugins(_environment).storages["s3_01"].plugin
    container = Container(
        "6f1c1a3e-8f63-4a43-9d3e-1f1f1f1f1f1f", Document(b"abc"), [], ContainerStatus.VERIFIED
    )
    saved = plugin.save(container)
    assert saved.is_success and saved.value == f"{url}/{container.id}"
    assert plugin.get(saved.value).value == Document(b"abc")
    assert plugin.delete(saved.value).is_success
    assert plugin.get(saved.value).is_failure and plugin.delete(saved.value).is_failure


@pytest.mark.parametrize("mode", ["result", "raise"])
def test_a_failing_storage_is_recorded_retried_and_loses_nothing(
    _environment: Path,
    client: TestClient,
    arch: ArchiveClient,
    pki: LocalPKI,
    uow: UnitOfWork,
    mode: str,
) -> None:
    parameters = {"Fail": "2", "Mode": mode}
    _configure(_environment, [_storage("nas_01", "flaky", Parameters=parameters)], [])
    container_id = _put(client, arch, pki, ArchiveCaPluginName="nas_01").json()["data"]
    blobs, plugins = client.app.state.blobs, load_plugins(_environment)  # type: ignore[attr-defined]
    assert run_plugin_tasks(uow, blobs, plugins) == 1
    assert run_plugin_tasks(uow, blobs, plugins) == 0  # backed off: not due yet
    with uow.transaction() as session:
        container = session.get(ArchiveContainer, container_id)
        assert container is not None and container.document_sha256 is not None  # kept
        assert blobs.read_bytes(container.document_sha256) == DOCUMENT
        task = session.scalars(select(ArchivePluginTask)).one()
        assert task.attempts == 1 and task.next_at > utcnow()
        expected = "share is full" if mode == "result" else "ConnectionError: share unreachable"
        assert task.last_error is not None and expected in task.last_error
    later = utcnow() + timedelta(hours=2)
    assert run_plugin_tasks(uow, blobs, plugins, now=later) == 1  # second failure
    assert run_plugin_tasks(uow, blobs, plugins, now=later + timedelta(hours=2)) == 1
    assert FlakyStorage.saved == {f"flaky://{container_id}": DOCUMENT}
    kinds = [kind for kind, _ in _events(uow, container_id)]
    assert kinds.count("storage-failed") == 2 and kinds[-1] == "stored"
    with uow.transaction() as session:
        container = session.get(ArchiveContainer, container_id)
        assert container is not None and container.document_path == f"flaky://{container_id}"
        assert container.status == int(ContainerStatus.VERIFIED)  # storage never sets status


# Post-processing


def test_the_builtin_post_processor_writes_signatures_and_a_report(
    _environment: Path,
    client: TestClient,
    arch: ArchiveClient,
    pki: LocalPKI,
    uow: UnitOfWork,
    settings: Settings,
) -> None:
    post = [
        {
            "IsEnabled": True,
            "PluginName": "San_01",
            "AssemblyName": "filesystem",
            "Parameters": {"folder": "out"},
        }
    ]
    _configure(_environment, [], post)
    container_id = _put(client, arch, pki).json()["data"]
    worker = Worker(
        uow, EnhanceContext(client.app.state.blobs, ArchiveSettings(), settings.data_dir)
    )  # type: ignore[attr-defined]
    assert worker.run_once() is True  # enhanced, then post-processed in the same round
    target = _environment / "out" / container_id
    served = client.get(f"/api/v1/archive/containers/{container_id}", headers=arch.member.headers)
    assert served.json()["status"] == 4
    expires = served.json()["signatures"][0]["expires_at"]
    assert expires is not None
    zipped = client.get(f"/api/document/{container_id}/sign", headers=arch.key_headers)
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        assert (target / "signature-0.sig").read_bytes() == archive.read("signature-0.sig")
    report = (target / "report.txt").read_text(encoding="utf-8")
    assert report.startswith("Signature 0 expiration date: ") and report.endswith(".\n")
    assert ("post-processed", "San_01") in _events(uow, container_id)


def test_post_processing_runs_for_containers_in_error_too(
    _environment: Path,
    client: TestClient,
    arch: ArchiveClient,
    pki: LocalPKI,
    uow: UnitOfWork,
    settings: Settings,
) -> None:
    post = [{"IsEnabled": True, "PluginName": "San_01", "AssemblyName": "filesystem"}]
    _configure(_environment, [], post)
    container_id = _put(client, arch, pki).json()["data"]
    blobs = client.app.state.blobs  # type: ignore[attr-defined]
    with uow.transaction() as session:  # make enhancement fail: the signature no longer fits
        container = session.get(ArchiveContainer, container_id)
        assert container is not None
        container.document_sha256 = blobs.put(b"Another document.\n").sha256
    worker = Worker(
        uow, EnhanceContext(client.app.state.blobs, ArchiveSettings(), settings.data_dir)
    )  # type: ignore[attr-defined]
    worker.run_once()
    details = client.get(f"/api/document/{container_id}", headers=arch.key_headers).json()["data"]
    assert details["status"] == 7
    report = (_environment / container_id / "report.txt").read_text(encoding="utf-8")
    assert report == "Error. Container status: Error."


def test_a_raising_post_processor_is_recorded_bounded_and_never_changes_status(
    _environment: Path,
    client: TestClient,
    arch: ArchiveClient,
    pki: LocalPKI,
    uow: UnitOfWork,
    settings: Settings,
) -> None:
    post = [
        {
            "IsEnabled": True,
            "PluginName": "notify",
            "AssemblyName": "tests.archive.test_plugins:RaisingPostProcessor",
        }
    ]
    _configure(_environment, [], post)
    container_id = _put(client, arch, pki).json()["data"]
    blobs = client.app.state.blobs  # type: ignore[attr-defined]
    Worker(uow, EnhanceContext(blobs, ArchiveSettings(), settings.data_dir)).run_once()
    plugins, now = load_plugins(_environment), utcnow()
    for attempt in range(1, POST_PROCESS_ATTEMPTS + 3):
        run_plugin_tasks(uow, blobs, plugins, now=now + timedelta(days=attempt))
    with uow.transaction() as session:
        task = session.scalars(select(ArchivePluginTask)).one()
        assert task.attempts == POST_PROCESS_ATTEMPTS and task.gave_up is True
        assert task.last_error == f"raised RuntimeError: cannot notify about {container_id}"
        container = session.get(ArchiveContainer, container_id)
        assert container is not None and container.status == int(ContainerStatus.ARCHIVED)
    failures = [d for k, d in _events(uow, container_id) if k == "post-process-failed"]
    assert len(failures) == POST_PROCESS_ATTEMPTS


def test_a_storage_plugin_that_cannot_read_back_is_recorded(
    _environment: Path,
    client: TestClient,
    arch: ArchiveClient,
    pki: LocalPKI,
    uow: UnitOfWork,
    settings: Settings,
) -> None:
    post = [{"IsEnabled": True, "PluginName": "San_01", "AssemblyName": "filesystem"}]
    _configure(_environment, [_storage("nas_01", "flaky")], post)
    container_id = _put(client, arch, pki, ArchiveCaPluginName="nas_01").json()["data"]
    blobs = client.app.state.blobs  # type: ignore[attr-defined]
    assert run_plugin_tasks(uow, blobs, load_plugins(_environment)) == 1  # stored
    FlakyStorage.saved.clear()  # the share lost it
    Worker(uow, EnhanceContext(blobs, ArchiveSettings(), settings.data_dir)).run_once()
    failures = [d for k, d in _events(uow, container_id) if k == "post-process-failed"]
    assert failures == [
        f"San_01, attempt 1: Storage plugin 'nas_01': flaky://{container_id} not found"
    ]
    assert not (_environment / container_id).exists()
