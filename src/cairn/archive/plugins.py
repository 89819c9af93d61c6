"""Storage and post-processing plugins of the signed archive: the stable interface plugins are
written against, and ``plugin-config.json``, which says which ones run.

This mirrors CryptoPro Archive's ``CryptoPro.Archive.Plugins.Design``: a plugin is a class with
a constructor taking no arguments and ``initialize(parameters)``; it returns a ``Result`` and
should not raise (cairn records it when it does). See docs/archive.md, "Plugins".

    {"Plugins": {
        "DocumentStorage": [{"IsEnabled": true, "ReadOnly": false, "PluginName": "fs_01",
                             "AssemblyName": "filesystem",
                             "Parameters": {"DocumentsFolderPath": "/srv/documents"}}],
        "SanConnector": [{"IsEnabled": true, "PluginName": "report_01",
                          "AssemblyName": "my_package.module:MyPostProcessor"}]}}

``AssemblyName`` is an import path (``package.module:ClassName``) or a name registered through
the ``register_archive_storages`` / ``register_archive_post_processors`` hooks (cairn's own are
``filesystem`` and ``fsspec``; an installed package adds its own names the same way).
"""

from __future__ import annotations

import importlib
import inspect
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from cairn.archive.statuses import ContainerStatus
from cairn.errors import Invalid

__all__ = [
    "CONFIG_FILE",
    "ArchivePlugins",
    "Container",
    "ContainerStatus",
    "Document",
    "Parameters",
    "PluginConfigError",
    "PluginEntry",
    "PostProcessor",
    "Result",
    "Signature",
    "StoragePlugin",
    "load_plugins",
]

CONFIG_FILE = "plugin-config.json"
T = TypeVar("T")


# The plugin-facing objects (a stable interface: add fields only with defaults).


@dataclass(frozen=True)
class Document:
    """The document's bytes, as the client sent them."""

    raw: bytes


@dataclass(frozen=True)
class Signature:
    """One signature's bytes (enhanced CAdES-A once archived) and when its validity ends
    (``signatureUpdateDate`` of the signature; None before enhancement)."""

    raw: bytes
    expires: datetime | None = None


@dataclass(frozen=True)
class Container:
    """What a plugin sees of a container. ``document`` is None when the archive does not keep
    the document (UseArchiveCa false)."""

    id: str
    document: Document | None
    signatures: list[Signature]
    status: ContainerStatus


@dataclass(frozen=True)
class Result(Generic[T]):
    """Success with an optional value, or failure with a message (plugins return these instead
    of raising)."""

    value: T | None = None
    error: str | None = None

    @property
    def is_failure(self) -> bool:
        return self.error is not None

    @property
    def is_success(self) -> bool:
        return self.error is None

    @classmethod
    def success(cls, value: T | None = None) -> Result[T]:
        return cls(value=value)

    @classmethod
    def failure(cls, message: str) -> Result[T]:
        return cls(error=message or "failed (no message)")


@runtime_checkable
class StoragePlugin(Protocol):
    """Keeps documents outside cairn's blob store. ``save`` returns where (a path or URL that
    ``get`` and ``delete`` take back)."""

    def initialize(self, parameters: Mapping[str, str]) -> None: ...
    def save(self, container: Container) -> Result[str]: ...
    def get(self, path: str) -> Result[Document]: ...
    def delete(self, path: str) -> Result[None]: ...


@runtime_checkable
class PostProcessor(Protocol):
    """Called after enhancement (also when the container ended in error). Either ``process``
    or ``async def process_async`` is enough; ``process`` is used when both exist."""

    def initialize(self, parameters: Mapping[str, str]) -> None: ...


class Parameters(Mapping[str, str]):
    """A plugin's ``Parameters``, looked up case-insensitively (the reference's own example
    writes ``Folder`` and reads ``folder``). ``base`` is the folder holding plugin-config.json,
    against which a plugin resolves relative paths."""

    def __init__(self, values: Mapping[str, Any], *, base: Path | None = None) -> None:
        self.base = base or Path.cwd()
        self._items = {
            str(k).casefold(): (str(k), "" if v is None else str(v)) for k, v in values.items()
        }

    def path(self, key: str, default: str = "") -> Path:
        """Parameter ``key`` as a folder, relative ones under ``base``."""
        return self.base / self.get(key, default)

    def __getitem__(self, key: str) -> str:
        return self._items[key.casefold()][1]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.casefold() in self._items


# plugin-config.json


class PluginConfigError(Invalid):
    """plugin-config.json is unreadable or names a plugin cairn cannot load."""

    code = "archive-plugin-config"
    title = "Bad archive plugin configuration"


@dataclass
class PluginEntry:
    """One entry of plugin-config.json, with its loaded and initialised plugin."""

    section: str  # "DocumentStorage" or "SanConnector"
    name: str
    assembly: str
    enabled: bool
    read_only: bool
    parameters: Parameters
    plugin: Any = None


SECTIONS = ("DocumentStorage", "SanConnector")


@dataclass
class ArchivePlugins:
    """The plugins plugin-config.json enables (empty when there is no file)."""

    storages: dict[str, PluginEntry] = field(default_factory=dict)
    post_processors: dict[str, PluginEntry] = field(default_factory=dict)
    disabled: dict[str, PluginEntry] = field(default_factory=dict)

    def storage_for_saving(self, name: str) -> PluginEntry:
        """The storage plugin ``name`` for a new container; refused when unknown, disabled or
        read-only (PluginUnavailable, a 422 in the caller's error shape)."""
        from cairn.archive.errors import PluginUnavailable

        entry = self.storages.get(name)
        if entry is None:
            if name in self.disabled:
                raise PluginUnavailable(f"Storage plugin {name!r} is disabled (IsEnabled false).")
            known = ", ".join(sorted(self.storages)) or "none are configured"
            raise PluginUnavailable(f"Unknown storage plugin {name!r} ({known}).")
        if entry.read_only:
            raise PluginUnavailable(
                f"Storage plugin {name!r} is read-only (ReadOnly true): it serves reads only."
            )
        return entry

    def storage_for_reading(self, name: str) -> PluginEntry | None:
        return self.storages.get(name)


def _entry(section: str, index: int, raw: object, folder: Path) -> PluginEntry:
    where = f"{CONFIG_FILE}: Plugins.{section}[{index}]"
    if not isinstance(raw, dict):
        raise PluginConfigError(f"{where} is not an object.")
    name = raw.get("PluginName")
    if not isinstance(name, str) or not name.strip():
        raise PluginConfigError(f"{where}: PluginName is required and must not be empty.")
    where = f"{where} ({name!r})"
    assembly = raw.get("AssemblyName")
    if not isinstance(assembly, str) or not assembly.strip():
        raise PluginConfigError(f"{where}: AssemblyName is required.")
    parameters = raw.get("Parameters") or {}
    if not isinstance(parameters, dict):
        raise PluginConfigError(f"{where}: Parameters must be an object.")
    for flag in ("IsEnabled", "ReadOnly"):
        if flag in raw and not isinstance(raw[flag], bool):
            raise PluginConfigError(f"{where}: {flag} must be true or false.")
    return PluginEntry(
        section=section,
        name=name,
        assembly=assembly.strip(),
        enabled=bool(raw.get("IsEnabled", True)),
        read_only=bool(raw.get("ReadOnly", False)),
        parameters=Parameters(parameters, base=folder),
    )


def _registered(section: str) -> dict[str, type]:
    from cairn.plugins import call_hook

    hook = (
        "register_archive_storages"
        if section == "DocumentStorage"
        else "register_archive_post_processors"
    )
    found: dict[str, type] = {}
    for mapping in reversed(call_hook(hook)):  # latest registered wins
        found.update(mapping or {})
    return found


def _plugin_class(entry: PluginEntry, where: str) -> type:
    if ":" in entry.assembly:
        module_name, _, attribute = entry.assembly.partition(":")
        try:
            found = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise PluginConfigError(
                f"{where}: cannot import {entry.assembly!r}: {type(exc).__name__}: {exc}"
            ) from exc
        if not inspect.isclass(found):
            raise PluginConfigError(f"{where}: {entry.assembly!r} is not a class.")
        return found
    registered = _registered(entry.section)
    if entry.assembly not in registered:
        known = ", ".join(sorted(registered)) or "none"
        raise PluginConfigError(
            f"{where}: AssemblyName {entry.assembly!r} is neither module:Class nor a "
            f"registered name (registered: {known})."
        )
    return registered[entry.assembly]


def _instantiate(entry: PluginEntry) -> Any:
    where = f"{CONFIG_FILE}: Plugins.{entry.section} {entry.name!r}"
    cls = _plugin_class(entry, where)
    needed = ("save", "get", "delete") if entry.section == "DocumentStorage" else ()
    missing = [m for m in ("initialize", *needed) if not callable(getattr(cls, m, None))]
    if entry.section == "SanConnector" and not (
        callable(getattr(cls, "process", None)) or callable(getattr(cls, "process_async", None))
    ):
        missing.append("process or process_async")
    if missing:
        raise PluginConfigError(f"{where}: {cls.__qualname__} has no {', '.join(missing)}.")
    try:
        plugin = cls()
        plugin.initialize(entry.parameters)
    except Exception as exc:
        raise PluginConfigError(f"{where}: initialize failed: {type(exc).__name__}: {exc}") from exc
    return plugin


def _parse(folder: Path) -> ArchivePlugins:
    path = folder / CONFIG_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        return ArchivePlugins()
    except (OSError, ValueError) as exc:
        raise PluginConfigError(f"{path}: {type(exc).__name__}: {exc}") from exc
    plugins = document.get("Plugins") if isinstance(document, dict) else None
    if not isinstance(plugins, dict):
        raise PluginConfigError(f'{path}: the top level must be {{"Plugins": {{...}}}}.')
    found = ArchivePlugins()
    seen: set[str] = set()
    for section in SECTIONS:
        entries = plugins.get(section) or []
        if not isinstance(entries, list):
            raise PluginConfigError(f"{CONFIG_FILE}: Plugins.{section} must be a list.")
        for index, raw in enumerate(entries):
            entry = _entry(section, index, raw, folder)
            if entry.name in seen:
                raise PluginConfigError(
                    f"{CONFIG_FILE}: Plugins.{section}[{index}]: PluginName {entry.name!r} "
                    "is used twice; names must be unique."
                )
            seen.add(entry.name)
            if not entry.enabled:
                found.disabled[entry.name] = entry  # not loaded, cannot be chosen
                continue
            entry.plugin = _instantiate(entry)
            target = found.storages if section == "DocumentStorage" else found.post_processors
            target[entry.name] = entry
    return found


_cache: dict[Path, tuple[float, ArchivePlugins]] = {}
_lock = threading.Lock()


def load_plugins(folder: Path | None) -> ArchivePlugins:
    """The plugins ``<folder>/plugin-config.json`` enables, loaded once per version of the
    file. No folder or no file: no plugins.

    Raises:
        PluginConfigError: the file is malformed, repeats or omits a name, or names a plugin
            that cannot be imported or initialised; the message names the entry.
    """
    if folder is None:
        return ArchivePlugins()
    path = folder / CONFIG_FILE
    with _lock:
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = -1
        cached = _cache.get(path)
        if cached is None or cached[0] != stamp:
            _cache[path] = (stamp, _parse(folder))
        return _cache[path][1]
