"""Every plugin test starts from a plugin manager that is not built yet, and leaves none."""

from __future__ import annotations

import pytest

from cairn import plugins


@pytest.fixture(autouse=True)
def fresh_plugin_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "_manager", None)
