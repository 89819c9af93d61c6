"""End to end: a resumable (tus) upload into a real `cairn serve`, the server killed (SIGKILL)
in the middle of a PATCH and started again on the same data folder: the upload resumes from
the last durable offset and ends with exactly the file sent. Then the CLI's resumable upload,
and `cairn admin gc` removing an expired upload."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import CAIRN, free_port, wait_until_responds

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EMAIL, PASSWORD = "grace@example.org", "Compiler-1952!"
TUS = {"Tus-Resumable": "1.0.0"}
MiB = 1024 * 1024


class Cairn:
    """One data folder served by a `cairn serve` process that the test may kill and restart."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {
            **os.environ,
            "CAIRN_DATA_DIR": str(root / "data"),
            "XDG_CONFIG_HOME": str(root / "config"),
            "CAIRN_CONFIG": str(root / "cairn.toml"),
        }
        for name in ("CAIRN_DATABASE_URL", "CAIRN_BLOB_URL"):
            self.env.pop(name, None)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env["CAIRN_API_URL"] = self.url
        with (self.root / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [*CAIRN, "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until_responds(f"{self.url}/healthz", self.process)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)  # no shutdown code runs: as a power cut
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CAIRN, *args], env=self.env, capture_output=True, text=True, timeout=300
        )


@pytest.fixture(scope="module")
def cairn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cairn]:
    served = Cairn(tmp_path_factory.mktemp("resumable"))
    served.start()
    assert served.cli("admin", "create-org", "--name", "Navy Lab").returncode == 0
    made = served.cli(
        "admin", "create-user", "--email", EMAIL, "--password", PASSWORD, "--org", "Navy Lab"
    )
    assert made.returncode == 0, made.stderr
    assert served.cli("login", "--email", EMAIL, "--password", PASSWORD).returncode == 0
    try:
        yield served
    finally:
        served.stop()


def headers(cairn: Cairn) -> dict[str, str]:
    answer = httpx.post(
        f"{cairn.url}/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD}
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}", **TUS}


def new_upload(cairn: Cairn, auth: dict[str, str], length: int, name: str) -> tuple[int, str]:
    made = httpx.post(f"{cairn.url}/api/v1/workspaces", json={}, headers=auth)
    assert made.status_code == 201, made.text
    wid = made.json()["id"]
    meta = "filename " + base64.b64encode(name.encode()).decode()
    started = httpx.post(
        f"{cairn.url}/api/v1/workspaces/{wid}/uploads",
        headers={**auth, "Upload-Length": str(length), "Upload-Metadata": meta},
    )
    assert started.status_code == 201, started.text
    return wid, started.headers["location"].rsplit("/", 1)[-1]


def test_a_server_killed_mid_patch_resumes_from_the_last_durable_offset(
    cairn: Cairn, tmp_path: Path
) -> None:
    data = os.urandom(6 * MiB)
    auth = headers(cairn)
    wid, upload_id = new_upload(cairn, auth, len(data), "data.bin")
    path = f"/api/v1/workspaces/{wid}/uploads/{upload_id}"
    stream = {"Content-Type": "application/offset+octet-stream"}
    first = httpx.patch(
        cairn.url + path, content=data[:MiB], headers={**auth, **stream, "Upload-Offset": "0"}
    )
    assert first.status_code == 204, first.text

    partial = cairn.root / "data" / "blobs" / ".partial" / upload_id
    sent_enough, killed = threading.Event(), threading.Event()

    def body() -> Iterator[bytes]:
        for start in range(MiB, 4 * MiB, 256 * 1024):
            yield data[start : start + 256 * 1024]
        sent_enough.set()
        killed.wait(60)  # hold the PATCH open until the server is killed
        yield data[4 * MiB :]

    failed: list[BaseException] = []

    def second() -> None:
        try:
            httpx.patch(
                cairn.url + path,
                content=body(),
                headers={**auth, **stream, "Upload-Offset": str(MiB)},
                timeout=120,
            )
        except httpx.HTTPError as exc:
            failed.append(exc)

    writer = threading.Thread(target=second, daemon=True)
    writer.start()
    assert sent_enough.wait(60)
    deadline = time.monotonic() + 30
    while partial.stat().st_size <= MiB and time.monotonic() < deadline:
        time.sleep(0.05)  # the server has written bytes of this PATCH past the durable offset
    assert partial.stat().st_size > MiB
    cairn.kill()
    killed.set()
    writer.join(30)
    assert failed, "the PATCH cannot have succeeded: its server was killed"

    cairn.start()
    auth = headers(cairn)
    head = httpx.head(cairn.url + path, headers=auth)
    assert head.status_code == 200, head.headers
    assert int(head.headers["upload-offset"]) == MiB  # the durable offset, not the bytes seen
    rest = data[MiB:]
    digest = base64.b64encode(hashlib.sha256(rest).digest()).decode()
    done = httpx.patch(
        cairn.url + path,
        content=rest,
        headers={
            **auth,
            **stream,
            "Upload-Offset": str(MiB),
            "Upload-Checksum": f"sha256 {digest}",
        },
        timeout=120,
    )
    assert done.status_code == 204, done.text
    assert int(done.headers["upload-offset"]) == len(data)
    got = httpx.get(f"{cairn.url}/api/v1/workspaces/{wid}/content/data.bin", headers=auth)
    assert got.status_code == 200
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
    assert not partial.exists()


def test_the_cli_uploads_resumably(cairn: Cairn, tmp_path: Path) -> None:
    source = tmp_path / "table.csv"
    source.write_bytes(b"a,b\n" + b"1,2\n" * 50_000)
    done = cairn.cli("workspace", "upload", str(source), "--resumable", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["file_count"] == 1 and summary["total_size"] == source.stat().st_size
    shown = cairn.cli("workspace", "show", str(summary["id"]), "--json")
    assert json.loads(shown.stdout)["status"] != "ERRORS", shown.stdout


def test_gc_removes_an_expired_upload(cairn: Cairn) -> None:
    auth = headers(cairn)
    _, upload_id = new_upload(cairn, auth, 100, "later.bin")
    partial = cairn.root / "data" / "blobs" / ".partial" / upload_id
    assert partial.exists()
    with sqlite3.connect(cairn.root / "data" / "cairn.db") as db:
        db.execute(
            "UPDATE workspace_uploads SET expires_at = '2000-01-01 00:00:00.000000' WHERE id = ?",
            (upload_id,),
        )
    gc = cairn.cli("admin", "gc", "--json")
    assert gc.returncode == 0, gc.stderr
    assert json.loads(gc.stdout)["expired_uploads_removed"] == [upload_id]
    assert not partial.exists()
