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
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.archives import tar_gz
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


# --- a client that disconnects in the middle of its body (raw socket) ----------------------------
def _send_half_and_close(
    cairn: Cairn, head: str, body: bytes, sent: int, reading: Callable[[], bool]
) -> None:
    """Send ``head`` declaring all of ``body``, then only ``sent`` bytes of it, wait until
    the server is ``reading`` the body, then close: the client is gone mid-body."""
    url = httpx.URL(cairn.url)
    with socket.create_connection((url.host, url.port or 80), timeout=30) as sock:
        sock.sendall(head.encode() + body[:sent])
        assert _wait_until(reading)


def _server_errors(cairn: Cairn) -> list[str]:
    """Lines of the server's log that show a 500 or an unhandled exception."""
    text = (cairn.root / "server.log").read_text(errors="replace")
    return [line for line in text.splitlines() if '" 500' in line or "Traceback" in line]


def _wait_until(done: Callable[[], bool]) -> bool:
    """Poll ``done`` (the server handles the cut-off request in its own time)."""
    deadline = time.monotonic() + 60
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_plain_upload_cut_off_mid_body_keeps_nothing(cairn: Cairn) -> None:
    auth = headers(cairn)
    made = httpx.post(f"{cairn.url}/api/v1/workspaces", json={}, headers=auth)
    wid = made.json()["id"]
    first = httpx.post(
        f"{cairn.url}/api/v1/workspaces/{wid}/files",
        files={"file": ("a.txt", b"first\n")},
        headers=auth,
    )
    assert first.status_code == 201, first.text
    before = httpx.get(f"{cairn.url}/api/v1/workspaces/{wid}", headers=auth).json()
    listed = httpx.get(f"{cairn.url}/api/v1/workspaces", headers=auth).json()["total"]
    errors = len(_server_errors(cairn))

    archive = tar_gz({f"f{i}.bin": os.urandom(64 * 1024) for i in range(64)})
    boundary = "cut-off-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.tar.gz"'
        f"\r\nContent-Type: application/gzip\r\n\r\n".encode()
        + archive
        + f"\r\n--{boundary}--\r\n".encode()
    )
    token = auth["Authorization"]
    scratch = cairn.root / "data" / "tmp"
    for path in ("/api/v1/workspaces/upload", f"/api/v1/workspaces/{wid}/files"):
        head = (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        # Cut off once the server writes the file part to its scratch file; then that goes.
        _send_half_and_close(
            cairn, head, body, len(body) // 2, lambda: any(scratch.glob("upload-*"))
        )
        assert _wait_until(lambda: not any(scratch.glob("upload-*")))
    after = httpx.get(f"{cairn.url}/api/v1/workspaces/{wid}", headers=auth).json()
    assert after["checksum"] == before["checksum"] and after["file_count"] == 1
    assert httpx.get(f"{cairn.url}/api/v1/workspaces", headers=auth).json()["total"] == listed
    assert _server_errors(cairn)[errors:] == []


def test_a_tus_patch_cut_off_mid_body_keeps_a_right_durable_offset(cairn: Cairn) -> None:
    data = os.urandom(4 * MiB)
    auth = headers(cairn)
    wid, upload_id = new_upload(cairn, auth, len(data), "cut.bin")
    path = f"/api/v1/workspaces/{wid}/uploads/{upload_id}"
    partial = cairn.root / "data" / "blobs" / ".partial" / upload_id
    errors = len(_server_errors(cairn))
    sent = 3 * MiB
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth['Authorization']}\r\n"
        "Tus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Upload-Offset: 0\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    _send_half_and_close(
        cairn, head, data, sent, lambda: partial.exists() and partial.stat().st_size > 0
    )

    def settled() -> bool:  # no PATCH holds the upload any more: HEAD and the file agree
        shown = httpx.head(cairn.url + path, headers=auth)
        return shown.status_code == 200 and partial.stat().st_size == int(
            shown.headers["upload-offset"]
        )

    assert _wait_until(settled)
    offset = int(httpx.head(cairn.url + path, headers=auth).headers["upload-offset"])
    # Every byte up to the durable offset is a byte the client sent, at its place; the server
    # may have dropped what it had not yet written when the connection went.
    assert 0 <= offset <= sent
    assert partial.read_bytes() == data[:offset]
    done = httpx.patch(
        cairn.url + path,
        content=data[offset:],
        headers={
            **auth,
            "Content-Type": "application/offset+octet-stream",
            "Upload-Offset": str(offset),
        },
        timeout=120,
    )
    assert done.status_code == 204, done.text
    got = httpx.get(f"{cairn.url}/api/v1/workspaces/{wid}/content/cut.bin", headers=auth)
    assert hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()
    assert _server_errors(cairn)[errors:] == []
