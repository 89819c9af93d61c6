"""A notifier that keeps what it is handed, registered through the real plugin manager, for
tests of what sends notices (``cairn.notify``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from cairn import hookimpl
from cairn.config import Settings
from cairn.notify import Notice, Recipient
from cairn.plugins import get_plugin_manager


@dataclass
class Collecting:
    """One channel that keeps every notice (``got``) and its recipients; ``fail`` raises."""

    channel: str = "email"
    fail: bool = False
    got: list[Notice] = field(default_factory=list)
    recipients: list[list[Recipient]] = field(default_factory=list)

    def send(self, notice: Notice, recipients: Sequence[Recipient], settings: Settings) -> None:
        if self.fail:
            raise OSError("gateway down")
        self.got.append(notice)
        self.recipients.append(list(recipients))


class _Plugin:
    def __init__(self, notifiers: Sequence[Collecting]) -> None:
        self.notifiers = list(notifiers)

    @hookimpl
    def register_notifiers(self) -> list[Collecting]:
        return self.notifiers


@contextmanager
def registered(*notifiers: Collecting) -> Iterator[None]:
    """The notifiers are registered channels while the block runs."""
    plugin = _Plugin(notifiers)
    get_plugin_manager().register(plugin, name=f"test-notifiers-{id(plugin)}")
    try:
        yield
    finally:
        get_plugin_manager().unregister(plugin)
