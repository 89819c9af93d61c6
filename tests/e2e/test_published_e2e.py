"""End to end: record a run locally, `cairn runs publish --to URL` uploads its package to a real
server, where it is a read-only run of the organisation (issue #14)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import CAIRN, Server

pytestmark = pytest.mark.e2e


def test_publish_to_a_server_uploads_the_package(server: Server, tmp_path: Path) -> None:
    server.sign_in("ada@example.org", "Engine-1843!", "Analytical")
    # The researcher's own data folder, not the server's; the login (config folder) is shared.
    env = {**server.env, "CAIRN_DATA_DIR": str(tmp_path / "local")}
    project = tmp_path / "project"
    project.mkdir()
    (project / "in.txt").write_text("abc")
    (project / "double.py").write_text(
        "import pathlib\npathlib.Path('out.txt').write_text(pathlib.Path('in.txt').read_text()*2)\n"
    )
    (project / "meta.yaml").write_text("title: Doubling\ncreators: [Ada]\nlicense: CC0-1.0\n")

    def cairn(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CAIRN, *args], env=env, cwd=project, capture_output=True, text=True, timeout=120
        )

    assert cairn("record", "double.py").returncode == 0
    assert cairn("runs", "metadata", "1", "--set", "meta.yaml").returncode == 0
    # An organisation the user is not in: the server refuses, nothing is recorded locally ...
    refused = cairn("runs", "publish", "1", "--to", server.url, "--org", str(uuid.uuid4()))
    assert refused.returncode != 0 and "not found" in refused.stderr.lower(), refused.stderr
    # ... so the retry is version 1 again and needs no --update
    done = cairn("runs", "publish", "1", "--to", server.url, "--json")
    assert done.returncode == 0, done.stderr
    received = json.loads(done.stdout)
    run = received["run"]
    assert run["kind"] == "published"
    assert [f["sha256"] for f in run["generated"]] == [hashlib.sha256(b"abcabc").hexdigest()]
    again = cairn("runs", "publish", "1", "--to", server.url, "--update", "--json")
    assert again.returncode == 0, again.stderr  # a new version is a new package
    assert json.loads(again.stdout)["run"]["run_id"] != run["run_id"]
