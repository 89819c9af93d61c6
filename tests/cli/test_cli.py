"""The `cairn` command in-process (CliRunner): help, clear errors, and local admin work."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cairn.blobs import open_blob_store
from cairn.cli.main import app
from cairn.config import get_settings

runner = CliRunner()


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """CAIRN_DATA_DIR on a fresh folder, with the settings cache cleared around the test."""
    monkeypatch.setenv("CAIRN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CAIRN_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CAIRN_DATABASE_URL", raising=False)
    monkeypatch.delenv("CAIRN_BLOB_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


@pytest.mark.parametrize(
    "args", [[], ["admin"], ["workspace"], ["orgs"], ["workspace", "upload", "--help"]]
)
def test_help_explains_each_command(args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--help"] if args[-1:] != ["--help"] else args)
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_bad_settings_are_one_clear_line(local: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_PORT", "eighty")
    result = runner.invoke(app, ["admin", "migrate"])
    assert result.exit_code == 2
    assert "Invalid settings" in result.output and "port" in result.output
    assert "Traceback" not in result.output


def test_commands_needing_login_say_so(local: Path) -> None:
    result = runner.invoke(app, ["whoami"])
    assert result.exit_code == 3 and "cairn login" in result.output


def test_check_reports_a_missing_blob(local: Path) -> None:
    seeded = runner.invoke(app, ["admin", "seed-demo", "--json"])
    assert seeded.exit_code == 0, seeded.output
    clean = runner.invoke(app, ["check", "--json"])
    assert clean.exit_code == 0 and json.loads(clean.stdout)["ok"] is True
    store = open_blob_store(str(local / "blobs"))
    victim = next(iter(store.iter_hashes()))
    store.delete(victim)
    broken = runner.invoke(app, ["check", "--json"])
    assert broken.exit_code == 1
    assert json.loads(broken.stdout)["missing"] == [victim]
