"""CLI start-up: the client commands import no server-side libraries, and the help that
`cairn --help` lists without importing a command matches that command's own help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cairn.cli.main import COMMANDS, load_command

SERVER_SIDE = ("sqlalchemy", "argon2", "fastapi")

PROBE = """
import sys
sys.argv = ["cairn", *sys.argv[1:]]
from cairn.cli.main import main
try:
    main()
except SystemExit:
    pass
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})), file=sys.stderr)
"""


def _imported(*args: str) -> set[str]:
    """Top-level packages a fresh interpreter holds after running ``cairn *args``."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120
    )
    return set(done.stderr.split())


def test_importing_the_cli_imports_no_server_side_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, cairn.cli.main; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = {name.split(".")[0] for name in done.stdout.split()}
    assert "cairn" in loaded
    assert loaded.isdisjoint({*SERVER_SIDE, "httpx"})


@pytest.mark.parametrize(
    ("args", "also_absent"),
    [(["--help"], {"httpx"}), (["--version"], {"httpx"}), (["whoami", "--help"], set())],
)
def test_help_and_version_import_no_server_side_library(
    args: list[str], also_absent: set[str]
) -> None:
    loaded = _imported(*args)
    assert "typer" in loaded  # the probe ran the command
    assert loaded.isdisjoint({*SERVER_SIDE, *also_absent})


@pytest.mark.parametrize("name", list(COMMANDS))
def test_listed_help_is_the_command_s_own(name: str) -> None:
    command = load_command(name)
    own = (command.help or "").strip().split("\n\n")[0].replace("\n", " ")
    assert COMMANDS[name].help == own


def test_record_imports_neither_fsspec_nor_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cairn record` on the default (folder) blob store: fsspec (~60 ms) is imported only
    for an fsspec URL, Alembic only when the database needs migrating (#14 start-up)."""
    folder = tmp_path
    (folder / "empty.py").write_text("")
    monkeypatch.setenv("CAIRN_DATA_DIR", str(folder / "data"))
    monkeypatch.delenv("CAIRN_DATABASE_URL", raising=False)
    monkeypatch.delenv("CAIRN_BLOB_URL", raising=False)
    monkeypatch.chdir(folder)
    first = _imported("record", "empty.py")  # migrates the new data folder
    assert "sqlalchemy" in first  # the probe recorded a run
    again = _imported("record", "empty.py")
    assert "Recorded" in again  # its stderr: the probe recorded a run (with sqlite3 alone)
    assert again.isdisjoint({"fsspec", "alembic", "sqlalchemy"})
    assert "fsspec" not in first
