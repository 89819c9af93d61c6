"""`cairn serve` removes, when it starts, the scratch files its stopped processes left, and
keeps those of running processes and those it cannot attribute."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.tempfiles import scratch_file
from tests.e2e.conftest import Server, _serve

pytestmark = pytest.mark.e2e


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    return child.pid


@pytest.fixture(scope="module")
def restarted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, Path]]]:
    """A server started on a data folder whose scratch space a crash left behind."""
    root = tmp_path_factory.mktemp("restart")
    work = root / "data" / "tmp"
    work.mkdir(parents=True)
    # A killed upload: its copy and its staging folder, owned by a process that is gone.
    orphan_file = work / f"upload-{_dead_pid()}-1-k2j3h4"
    orphan_file.write_bytes(b"half an upload")
    orphan_dir = work / f"stage-{_dead_pid()}-1-x8y9z0"
    (orphan_dir / "paper").mkdir(parents=True)
    (orphan_dir / "paper" / "main.tex").write_bytes(b"\\documentclass{article}")
    fd, running = scratch_file(work, "upload-")  # this test process: still running
    os.close(fd)
    unknown = work / "upload-abc123"  # an older cairn's name: left to gc's grace period
    unknown.write_bytes(b"owner unknown")
    paths = {"orphan_file": orphan_file, "orphan_dir": orphan_dir}
    paths |= {"running": running, "unknown": unknown}
    for server in _serve(root, {}):
        yield server, paths


def test_serve_removes_what_stopped_processes_left(
    restarted: tuple[Server, dict[str, Path]],
) -> None:
    server, paths = restarted
    assert not paths["orphan_file"].exists() and not paths["orphan_dir"].exists()
    assert paths["running"].exists() and paths["unknown"].exists()
    assert "Removed 2 scratch leftovers" in server.log.read_text()
    checked = server.cli("check", "--json")
    assert checked.returncode == 0, checked.stderr
    leftovers = json.loads(checked.stdout)["leftovers"]
    assert [item["name"] for item in leftovers] == ["upload-abc123"]
    assert leftovers[0]["owner_pid"] is None and leftovers[0]["bytes"] == len(b"owner unknown")
