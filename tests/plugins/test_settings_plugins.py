"""Plugin modules named in settings (``CAIRN_PLUGINS``), and the ``register_routes`` hook."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cairn.api import create_app
from cairn.blobs import LocalBlobStore
from cairn.config import Settings
from cairn.plugins import PluginError, get_plugin_manager


@contextmanager
def serving(settings: Settings) -> Iterator[tuple[FastAPI, TestClient]]:
    app = create_app(settings)
    try:
        with TestClient(app) as client:
            yield app, client
    finally:
        app.state.engine.dispose()


def test_module_named_in_settings_adds_a_route_and_a_blob_store(
    settings: Settings, tmp_path: Path
) -> None:
    configured = settings.model_copy(
        update={
            "plugins": ["tests.plugins.settings_plugin"],
            "blob_url": f"settingstest://{tmp_path}/blobs",
        }
    )
    with serving(configured) as (app, client):
        assert isinstance(app.state.blobs, LocalBlobStore)
        assert app.state.blobs.root == tmp_path / "blobs"
        response = client.get("/settings-plugin/limit")
        assert response.status_code == 200
        assert response.json() == configured.max_request_bytes
        # Plugin routes come after cairn's own, and cairn's still answer.
        assert client.get("/healthz").status_code == 200
        paths = list(client.get("/openapi.json").json()["paths"])
        assert paths.index("/settings-plugin/limit") > paths.index("/healthz")


def test_module_is_registered_once_per_process(settings: Settings) -> None:
    configured = settings.model_copy(update={"plugins": ["tests.plugins.settings_plugin"]})
    for _ in range(2):
        with serving(configured) as (_app, client):
            assert client.get("/settings-plugin/limit").status_code == 200
    names = [name for name, _ in get_plugin_manager().list_name_plugin()]
    assert names.count("tests.plugins.settings_plugin") == 1


def test_without_the_setting_there_is_no_plugin_route(settings: Settings) -> None:
    with serving(settings) as (_app, client):
        assert client.get("/settings-plugin/limit").status_code == 404


@pytest.mark.parametrize(
    ("module", "reason"),
    [
        ("tests.plugins.broken_plugin", "needs a package that is not installed"),
        ("tests.plugins.no_such_plugin", "No module named 'tests.plugins.no_such_plugin'"),
    ],
)
def test_module_that_fails_to_import_is_named(module: str, reason: str, settings: Settings) -> None:
    with pytest.raises(PluginError) as caught:
        create_app(settings.model_copy(update={"plugins": [module]}))
    message = str(caught.value)
    assert f"plugin module {module!r} (named in CAIRN_PLUGINS) failed to load" in message
    assert reason in message


def test_register_routes_that_raises_is_named(settings: Settings) -> None:
    configured = settings.model_copy(update={"plugins": ["tests.plugins.failing_plugin"]})
    with pytest.raises(
        PluginError, match=r"'tests.plugins.failing_plugin' failed in register_routes"
    ):
        create_app(configured)
