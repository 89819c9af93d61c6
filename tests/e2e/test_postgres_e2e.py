"""End to end on PostgreSQL and an fsspec blob store: the same server, other backends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cairn import client
from tests.e2e.conftest import Server

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

EMAIL, PASSWORD = "emmy@example.org", "Noether-1915!"


def test_accounts_and_workspaces_on_postgres(postgres_server: Server, tmp_path: Path) -> None:
    server = postgres_server
    assert server.cli("admin", "create-org", "--name", "Erlangen").returncode == 0
    made = server.cli(
        "admin", "create-user", "--email", EMAIL, "--password", PASSWORD, "--org", "Erlangen"
    )
    assert made.returncode == 0, made.stderr
    paper = tmp_path / "main.tex"
    paper.write_bytes(b"\\documentclass{article}\\begin{document}Rings.\\end{document}\n")
    with client.login(email=EMAIL, password=PASSWORD, api_url=server.url) as me:
        assert [o.name for o in me.organisations] == ["Erlangen"]
        workspace = me.workspaces.upload(paper)
        assert workspace.source_format == "tex"
        saved = workspace.download(tmp_path / "copy.tex", file="main.tex")
        assert saved.read_bytes() == paper.read_bytes()
        # The package is built in the background after the upload; downloading it waits for
        # none and builds it if needed, so the store then holds exactly the file and package.
        package = workspace.download(tmp_path / "package.tar.gz")
        assert package.stat().st_size > 0
    checked = server.cli("check", "--json")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["checked"] == 2  # main.tex and its package
