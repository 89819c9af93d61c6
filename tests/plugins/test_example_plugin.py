"""The example plugin package, installed for real with pip and found through its entry point."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cairn.api import create_app
from cairn.blobs import LocalBlobStore, open_blob_store
from cairn.config import Settings
from cairn.errors import Invalid
from cairn.plugins import get_plugin_manager

EXAMPLE = Path(__file__).resolve().parent / "cairn-example-plugin"


def _build_isolation() -> list[str]:
    """``--no-build-isolation`` when this environment can build the package without an index."""
    if importlib.util.find_spec("setuptools") is None:
        return []
    major, minor = (int(part) for part in metadata.version("setuptools").split(".")[:2])
    # setuptools before 70.1 builds wheels with the separate ``wheel`` package.
    if (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None:
        return ["--no-build-isolation"]
    return []


@pytest.fixture(scope="session")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder the example package is pip-installed into, once for the whole run."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # shared by this run's xdist workers; the lock lets one install
    site = root / "cairn-example-plugin-site"
    with open(root / "cairn-example-plugin.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not any(site.glob("*.dist-info")):
            # pip builds in the source folder; a copy keeps build/ out of the checkout.
            source = shutil.copytree(EXAMPLE, root / "cairn-example-plugin-src", dirs_exist_ok=True)
            command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
            command += [*_build_isolation(), "--target", str(site), str(source)]
            result = subprocess.run(command, capture_output=True, text=True)
            assert result.returncode == 0, f"{command} failed:\n{result.stdout}{result.stderr}"
    return site


@pytest.fixture
def example_plugin(example_site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed example package on ``sys.path`` for this test only."""
    monkeypatch.syspath_prepend(str(example_site))


@pytest.mark.usefixtures("example_plugin")
def test_pip_installed_entry_point_is_loaded() -> None:
    dist = metadata.distribution("cairn-example-plugin")
    assert [(ep.group, ep.name) for ep in dist.entry_points] == [("cairn", "example")]
    manager = get_plugin_manager()
    assert manager.has_plugin("example")
    assert [d.project_name for p, d in manager.list_plugin_distinfo()] == ["cairn-example-plugin"]


@pytest.mark.usefixtures("example_plugin")
def test_example_blob_store_round_trips(tmp_path: Path) -> None:
    store = open_blob_store(f"example://{tmp_path}/blobs")
    assert type(store).__name__ == "ExampleBlobStore"
    assert isinstance(store, LocalBlobStore)
    ref = store.put(b"stored by a plugin")
    assert store.read_bytes(ref.sha256) == b"stored by a plugin"
    assert (tmp_path / "blobs" / ref.sha256[:2] / ref.sha256).read_bytes() == b"stored by a plugin"
    assert list(open_blob_store(f"EXAMPLE://{tmp_path}/blobs").iter_hashes()) == [ref.sha256]


@pytest.mark.usefixtures("example_plugin")
def test_example_blob_store_refuses_a_relative_folder() -> None:
    with pytest.raises(Invalid, match="absolute folder"):
        open_blob_store("example://relative/folder")


@pytest.mark.usefixtures("example_plugin")
def test_app_serves_the_example_route_and_store(settings: Settings, tmp_path: Path) -> None:
    app = create_app(settings.model_copy(update={"blob_url": f"example://{tmp_path}/blobs"}))
    try:
        assert type(app.state.blobs).__name__ == "ExampleBlobStore"
        with TestClient(app) as client:
            response = client.get("/example/ping")
            assert (response.status_code, response.json()) == (200, {"ping": "pong"})
            operation = client.get("/openapi.json").json()["paths"]["/example/ping"]["get"]
            assert operation["operationId"] == "example-ping"
    finally:
        app.state.engine.dispose()


def test_without_the_package_on_the_path_the_scheme_is_unknown(example_site: Path) -> None:
    # Installed for the run, yet invisible to tests that do not ask for it.
    assert any(example_site.glob("*.dist-info"))
    assert str(example_site) not in sys.path
    with pytest.raises(Invalid, match="no blob store for example://"):
        open_blob_store("example:///tmp/blobs")
