"""Settings: defaults need nothing, env vars and cairn.toml override, every field documented."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from cairn.config import Settings


def test_every_setting_is_documented() -> None:
    undocumented = [name for name, f in Settings.model_fields.items() if not f.description]
    assert undocumented == []


def test_defaults_derive_from_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir=tmp_path / "d")
    assert settings.database_url == f"sqlite:///{tmp_path / 'd' / 'cairn.db'}"
    assert settings.blob_url == str(tmp_path / "d" / "blobs")
    assert settings.token_lifetime == timedelta(days=1)
    assert (settings.host, settings.port, settings.executor) == ("127.0.0.1", 8000, "local")


def test_env_vars_then_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "cairn.toml"
    toml.write_text('port = 9001\nhost = "0.0.0.0"\ntoken_lifetime = 3600\n')
    monkeypatch.setenv("CAIRN_CONFIG", str(toml))
    monkeypatch.setenv("CAIRN_PORT", "9002")
    monkeypatch.setenv("CAIRN_DATABASE_URL", "postgresql://cairn@db.example/cairn")
    settings = Settings(data_dir=tmp_path)
    assert settings.port == 9002  # env beats toml
    assert settings.host == "0.0.0.0"  # toml beats default
    assert settings.token_lifetime == timedelta(hours=1)
    assert settings.database_url == "postgresql+psycopg://cairn@db.example/cairn"


def test_bad_values_are_refused_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="port"):
        Settings(data_dir=tmp_path)
    monkeypatch.delenv("CAIRN_PORT")
    with pytest.raises(ValidationError, match="executor"):
        Settings(data_dir=tmp_path, executor="cloud")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        ("my_site.hooks", ["my_site.hooks"]),
        (" a.b , c ,", ["a.b", "c"]),
        ('["a.b", "c"]', ["a.b", "c"]),
    ],
)
def test_plugins_from_the_environment(
    value: str, expected: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAIRN_PLUGINS", value)
    assert Settings(data_dir=tmp_path).plugins == expected


def test_plugins_from_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "cairn.toml"
    toml.write_text('plugins = ["a.b", "c"]\n')
    monkeypatch.setenv("CAIRN_CONFIG", str(toml))
    assert Settings(data_dir=tmp_path).plugins == ["a.b", "c"]
    assert Settings(data_dir=tmp_path, plugins=[]).plugins == []
