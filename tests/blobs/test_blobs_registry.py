"""open_blob_store: plain paths, schemes from plugins and the fsspec fallback."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from tests.plugins.dists import install_distribution

from cairn.blobs import FsspecBlobStore, LocalBlobStore, open_blob_store
from cairn.errors import Invalid
from cairn.plugins import PluginError

HERE = Path(__file__).resolve().parent


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Install a distribution whose entry point names ``blobs_test_plugin``."""
    monkeypatch.syspath_prepend(str(HERE))
    install_distribution(
        monkeypatch, tmp_path / "site", "cairn-blobs-test-plugin", {"blobs": "blobs_test_plugin"}
    )


def test_plain_paths_open_a_local_store(tmp_path: Path) -> None:
    by_str = open_blob_store(str(tmp_path / "a"))
    by_path = open_blob_store(tmp_path / "b")
    assert isinstance(by_str, LocalBlobStore) and by_str.root == tmp_path / "a"
    assert isinstance(by_path, LocalBlobStore) and by_path.root == tmp_path / "b"


def test_relative_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_blob_store("data/blobs")
    assert isinstance(store, LocalBlobStore)
    assert store.root == tmp_path / "data" / "blobs"


def test_fsspec_urls_open_an_fsspec_store(tmp_path: Path) -> None:
    # cairn's built-in plugin registers both schemes.
    file_store = open_blob_store(f"file://{tmp_path}/f")
    memory_store = open_blob_store("memory://cairn-test-registry/blobs")
    assert isinstance(file_store, FsspecBlobStore)
    assert isinstance(memory_store, FsspecBlobStore)
    ref = memory_store.put(b"via registry")
    assert memory_store.read_bytes(ref.sha256) == b"via registry"
    memory_store.fs.rm("/cairn-test-registry", recursive=True)


def test_fsspec_fallback_without_a_plugin(tmp_path: Path) -> None:
    # "local" is fsspec's alias of file://; no plugin registers it.
    store = open_blob_store(f"local://{tmp_path}/blobs")
    assert isinstance(store, FsspecBlobStore)
    ref = store.put(b"fallback")
    assert (tmp_path / "blobs" / ref.sha256[:2] / ref.sha256).is_file()


def test_unknown_scheme_is_invalid() -> None:
    with pytest.raises(Invalid, match="nosuchscheme://"):
        open_blob_store("nosuchscheme://bucket/prefix")


def test_malformed_url_is_invalid() -> None:
    with pytest.raises(Invalid, match="not a storage URL"):
        open_blob_store("://nothing")


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed")
def test_known_protocol_without_its_driver_is_invalid() -> None:
    with pytest.raises(Invalid, match="s3fs"):
        open_blob_store("s3://bucket/prefix")


@pytest.mark.usefixtures("installed_plugin")
def test_entry_point_plugin_is_used(tmp_path: Path) -> None:
    store = open_blob_store(f"cairntest://{tmp_path}/plugin")
    assert type(store).__name__ == "PluginStore"
    assert store.url == f"cairntest://{tmp_path}/plugin"  # type: ignore[attr-defined]
    ref = store.put(b"through a plugin")
    assert store.read_bytes(ref.sha256) == b"through a plugin"


@pytest.mark.usefixtures("installed_plugin")
def test_scheme_is_case_insensitive(tmp_path: Path) -> None:
    assert type(open_blob_store(f"CairnTest://{tmp_path}/p")).__name__ == "PluginStore"


@pytest.mark.usefixtures("installed_plugin")
def test_plugin_wins_over_fsspec(tmp_path: Path) -> None:
    assert type(open_blob_store(f"ftp://{tmp_path}/p")).__name__ == "PluginStore"


@pytest.mark.usefixtures("installed_plugin")
def test_plugin_that_returns_no_store_is_a_plugin_error() -> None:
    with pytest.raises(PluginError, match=r"cairnwrong://.*blobs_test_plugin:NotAStore"):
        open_blob_store("cairnwrong://x")


@pytest.mark.usefixtures("installed_plugin")
def test_unknown_scheme_message_lists_plugins() -> None:
    with pytest.raises(Invalid, match="cairntest"):
        open_blob_store("nosuchscheme://x")
