"""End to end: a process scheduled every minute with repeat_count=3 runs exactly three times
across a restart of a real `cairn serve` (SQLite), each run charged once. Slow: it waits for
the real minutes to pass."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Server, _serve
from tests.processing.fusion_helpers import GLASGOW

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EMAIL, PASSWORD = "anning@example.org", "Ichthyosaur-1811"


@contextmanager
def _up(root: Path) -> Iterator[Server]:
    root.mkdir(exist_ok=True)
    yield from _serve(root, {"CAIRN_SCHEDULER_INTERVAL": "1"})


def _runs(server: Server, name: str) -> dict[str, Any]:
    done = server.cli("process", "display", name, "--json")
    assert done.returncode == 0, done.stderr
    shown: dict[str, Any] = json.loads(done.stdout)
    return shown


def _wait_runs(server: Server, name: str, count: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = _runs(server, name)
        if shown["executions"] >= count and shown["progress"] == 100:
            return shown
        time.sleep(1)
    raise AssertionError(f"{name} did not reach {count} runs: {_runs(server, name)}")


def test_every_minute_three_times_across_a_restart(tmp_path: Path) -> None:
    region = tmp_path / "glasgow.json"
    region.write_text(json.dumps(GLASGOW))
    with _up(tmp_path / "root") as server:
        server.sign_in(EMAIL, PASSWORD, "Lyme Regis")
        granted = server.cli("admin", "grant-credits", "--org", "Lyme Regis", "--amount", "10")
        assert granted.returncode == 0, granted.stderr
        started = server.cli(
            "process", "start", "Region statistics", "-l", str(region), "-n", "Minutely",
            "--every", '{"minutes": 1}', "--repeat-count", "3", "--json",
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        assert json.loads(started.stdout)["status"] == "execute"
        shown = _wait_runs(server, "Minutely", 1, timeout=90)
        assert shown["runs_done"] == 1
    # The server stopped (SIGTERM): its scheduler gave its lease up. The same data, again:
    with _up(tmp_path / "root") as server:
        assert server.cli("login", "--email", EMAIL, "--password", PASSWORD).returncode == 0
        shown = _wait_runs(server, "Minutely", 3, timeout=240)
        assert shown["executions"] == 3 and shown["runs_done"] == 3
        assert shown["status"] == "stop" and shown["next_due_at"] is None
        org = json.loads(server.cli("orgs", "list", "--json").stdout)[0]["id"]
        ledger = json.loads(server.cli("orgs", "credits", org, "--json").stdout)
        scheduled = [e for e in ledger["items"] if e["reason"].startswith("Scheduled execution")]
        assert [e["amount"] for e in scheduled] == [-1, -1, -1]
