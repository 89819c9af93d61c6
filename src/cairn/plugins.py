"""The plugin manager: cairn's built-in plugins, installed ones and ones named in settings.

    from cairn import hookimpl

    @hookimpl
    def register_blob_stores():
        return {"example": ExampleBlobStore}

Installed packages register a module under the entry-point group ``cairn``; ``CAIRN_PLUGINS``
names further modules. Nothing loads at import time: the manager is built on first use, so
``import cairn`` and ``cairn --help`` pay nothing for plugins. See docs/plugins.md.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import threading
import traceback
from collections.abc import Iterator
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pluggy

from cairn import hookspecs
from cairn.errors import Invalid

if TYPE_CHECKING:
    from cairn.config import Settings

__all__ = [
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "LOAD_PLUGINS_ENV",
    "PluginError",
    "call_hook",
    "get_plugin_manager",
    "load_plugins",
]

DEFAULT_PLUGINS = ("cairn.blobs.backends", "cairn.archive.builtin_plugins", "cairn.notifiers")
"""Modules of built-in behaviour, registered on the same hooks as third-party plugins."""

ENTRY_POINT_GROUP = "cairn"
"""Installed packages register ``<name> = "<module>"`` in this entry-point group."""

LOAD_PLUGINS_ENV = "CAIRN_LOAD_PLUGINS"
"""If set, only the entry points of these comma-separated distributions load (empty: none)."""


class PluginError(Invalid):
    """A plugin failed to import, to register, or in a hook cairn calls while it starts."""

    code = "plugin-error"
    title = "Plugin failed"


_lock = threading.RLock()
_manager: pluggy.PluginManager | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """The process's plugin manager, built on first use with built-in and installed plugins.

    Raises:
        PluginError: a plugin failed to import or to register. Nothing is kept, so the next
            call tries again.
    """
    global _manager
    with _lock:
        if _manager is None:
            _manager = _build()
        return _manager


def load_plugins(settings: Settings) -> pluggy.PluginManager:
    """The plugin manager, with the modules ``settings.plugins`` names registered as well.

    Each module is registered once, however often this runs (every ``create_app`` does).
    """
    manager = get_plugin_manager()
    with _lock:
        for module in settings.plugins:
            _register_module(manager, module, source="named in CAIRN_PLUGINS")
    return manager


def call_hook(name: str, **kwargs: Any) -> list[Any]:
    """Call hook ``name`` on every plugin, the latest registered first; return their results.

    Raises:
        PluginError: an implementation raised; the error names its plugin, which pluggy's
            own exception would leave the user to guess.
    """
    manager = get_plugin_manager()
    caller: pluggy.HookCaller = getattr(manager.hook, name)
    try:
        return list(caller(**kwargs))
    except Exception as exc:
        plugin = _describe(manager, _plugin_that_raised(caller, exc))
        raise PluginError(
            f"{plugin} failed in {name}: {type(exc).__name__}: {exc}",
            detail={"plugin": plugin, "hook": name},
        ) from exc


def _build() -> pluggy.PluginManager:
    manager = pluggy.PluginManager("cairn")
    manager.add_hookspecs(hookspecs)
    for module in DEFAULT_PLUGINS:
        _register_module(manager, module, source="built in")
    _load_entry_points(manager)
    return manager


def _register_module(manager: pluggy.PluginManager, module: str, *, source: str) -> None:
    if manager.has_plugin(module):
        return
    with _failing_as(f"plugin module {module!r} ({source})"):
        plugin = importlib.import_module(module)
        if not manager.is_registered(plugin):  # e.g. installed too, under its entry point
            manager.register(plugin, name=module)


def _load_entry_points(manager: pluggy.PluginManager) -> None:
    only = os.environ.get(LOAD_PLUGINS_ENV)
    allowed = None if only is None else {_canonical(n) for n in only.split(",") if n.strip()}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry_point.dist.name if entry_point.dist is not None else "an unknown package"
        if allowed is not None and _canonical(dist) not in allowed:
            continue
        # One entry point per call, so a failure names the entry point that failed.
        origin = f"entry point {entry_point.name} = {entry_point.value} of {dist}"
        with _failing_as(f"plugin {entry_point.name!r} ({origin})"):
            manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=entry_point.name)


@contextlib.contextmanager
def _failing_as(plugin: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        raise PluginError(
            f"{plugin} failed to load: {type(exc).__name__}: {exc}", detail={"plugin": plugin}
        ) from exc


def _plugin_that_raised(caller: pluggy.HookCaller, exc: BaseException) -> object | None:
    """The plugin whose implementation is the innermost one in ``exc``'s traceback."""
    plugins = {
        getattr(impl.function, "__code__", None): impl.plugin for impl in caller.get_hookimpls()
    }
    found = None
    for frame, _ in traceback.walk_tb(exc.__traceback__):
        found = plugins.get(frame.f_code, found)
    return found


def _describe(manager: pluggy.PluginManager, plugin: object | None) -> str:
    if plugin is None:
        return "a plugin"
    name = manager.get_name(plugin)
    module = getattr(plugin, "__name__", type(plugin).__module__)
    for registered, dist in manager.list_plugin_distinfo():
        if registered is plugin:
            return f"plugin {name!r} (module {module}, from {dist.project_name} {dist.version})"
    return f"plugin {name!r}" if name == module else f"plugin {name!r} (module {module})"


def _canonical(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()
