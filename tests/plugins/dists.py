"""Put a minimal installed distribution on ``sys.path``, as ``pip install`` would leave one."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from cairn import plugins


def install_distribution(
    monkeypatch: pytest.MonkeyPatch, site: Path, name: str, entry_points: Mapping[str, str]
) -> None:
    """Write ``<site>/<name>-1.0.dist-info`` naming ``entry_points`` in the group ``cairn``.

    ``site`` goes on ``sys.path`` and the plugin manager is reset, so the next one built finds
    the distribution; ``monkeypatch`` undoes both after the test.
    """
    dist = site / f"{name.replace('-', '_')}-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (dist / "entry_points.txt").write_text(f"[{plugins.ENTRY_POINT_GROUP}]\n{lines}")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(plugins, "_manager", None)
