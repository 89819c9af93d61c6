"""The plugin manager: built-in plugins, entry points, clear errors naming the plugin at fault."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cairn
from cairn import hookspecs
from cairn.blobs import open_blob_store
from cairn.plugins import DEFAULT_PLUGINS, LOAD_PLUGINS_ENV, PluginError, get_plugin_manager
from tests.plugins.dists import install_distribution


def test_importing_cairn_loads_no_plugins() -> None:
    # The CLI's start-up budget: neither pluggy nor any entry-point scan on ``import cairn``.
    code = "import sys, cairn; print(sorted(m for m in sys.modules if 'plugg' in m))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_hookimpl_is_re_exported() -> None:
    assert cairn.hookimpl is hookspecs.hookimpl
    with pytest.raises(AttributeError, match="no_such_name"):
        cairn.no_such_name  # noqa: B018


def test_manager_is_built_once_with_the_built_in_plugins() -> None:
    manager = get_plugin_manager()
    assert manager is get_plugin_manager()
    assert [manager.has_plugin(name) for name in DEFAULT_PLUGINS] == [True] * len(DEFAULT_PLUGINS)


def test_entry_point_plugins_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_distribution(
        monkeypatch, tmp_path, "cairn-quiet-plugin", {"quiet": "tests.plugins.quiet_plugin"}
    )
    assert get_plugin_manager().has_plugin("quiet")


def test_entry_point_that_fails_to_import_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_distribution(
        monkeypatch, tmp_path, "cairn-broken-plugin", {"broken": "cairn_no_such_module_xyz"}
    )
    with pytest.raises(PluginError) as caught:
        get_plugin_manager()
    message = str(caught.value)
    assert "'broken'" in message
    assert "broken = cairn_no_such_module_xyz of cairn-broken-plugin" in message
    assert "No module named 'cairn_no_such_module_xyz'" in message
    # Opening a plugin-provided store hits the same error instead of a half-loaded manager.
    with pytest.raises(PluginError, match="cairn_no_such_module_xyz"):
        open_blob_store("memory://x")


def test_implementation_with_unknown_argument_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_distribution(
        monkeypatch, tmp_path, "cairn-misfit-plugin", {"misfit": "tests.plugins.misfit_plugin"}
    )
    with pytest.raises(PluginError, match=r"(?s)'misfit'.*nonsense"):
        get_plugin_manager()


def test_hook_that_raises_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_distribution(
        monkeypatch, tmp_path, "cairn-failing-plugin", {"failing": "tests.plugins.failing_plugin"}
    )
    with pytest.raises(PluginError) as caught:
        open_blob_store("memory://x")
    message = str(caught.value)
    assert "plugin 'failing' (module tests.plugins.failing_plugin" in message
    assert "cairn-failing-plugin 1.0" in message
    assert "register_blob_stores" in message and "fails on purpose" in message


@pytest.mark.parametrize(("only", "loaded"), [("cairn-quiet-plugin", True), ("", False)])
def test_load_plugins_env_restricts_entry_points(
    only: str, loaded: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_distribution(
        monkeypatch, tmp_path / "a", "cairn-quiet-plugin", {"quiet": "tests.plugins.quiet_plugin"}
    )
    # Left out by the variable, a broken plugin no longer stops cairn from starting.
    install_distribution(
        monkeypatch, tmp_path / "b", "cairn-broken-plugin", {"broken": "cairn_no_such_module_xyz"}
    )
    monkeypatch.setenv(LOAD_PLUGINS_ENV, only)
    manager = get_plugin_manager()
    assert manager.has_plugin("quiet") is loaded
    assert not manager.has_plugin("broken")
    assert manager.has_plugin(DEFAULT_PLUGINS[0])


def test_every_hook_is_documented_with_its_arguments() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    documented = dict(re.findall(r"^### `(\w+)\(([^)]*)\)`$", docs, flags=re.MULTILINE))
    specs = {
        name: function
        for name, function in vars(hookspecs).items()
        if getattr(function, "cairn_spec", None) is not None
    }
    assert specs, "no hook specifications found"
    for name, function in specs.items():
        arguments = ", ".join(inspect.signature(function).parameters)
        assert documented.get(name) == arguments, f"docs/plugins.md lacks ### `{name}(...)`"
        summary = (function.__doc__ or "").strip()
        assert summary and "\n" not in summary, f"{name} needs a one-line docstring"
