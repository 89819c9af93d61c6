"""A real `cairn serve` process on a free port with its own data folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

CAIRN = [sys.executable, "-m", "cairn.cli.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_responds(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"cairn serve exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


@dataclass
class Server:
    url: str
    env: dict[str, str]
    data_dir: Path
    log: Path

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the `cairn` command against this server's data and config folders."""
        return subprocess.run(
            [*CAIRN, *args], env=self.env, capture_output=True, text=True, input=input, timeout=120
        )

    def json(self, *args: str) -> Any:
        """Run a `cairn` command with `--json`; it must succeed; its parsed output."""
        done = self.cli(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def sign_in(self, email: str, password: str, organisation: str) -> Server:
        """Create the organisation and a member of it with `cairn admin`, then `cairn login`
        as that member (the CLI keeps the login for later commands)."""
        self.cli("admin", "create-org", "--name", organisation)
        made = self.cli(
            "admin", "create-user", "--email", email, "--password", password, "--org", organisation
        )
        assert made.returncode == 0, made.stderr
        assert self.cli("login", "--email", email, "--password", password).returncode == 0
        return self


def _serve(root: Path, extra_env: dict[str, str]) -> Iterator[Server]:
    port = free_port()
    env = {
        **os.environ,
        "CAIRN_DATA_DIR": str(root / "data"),
        "CAIRN_API_URL": f"http://127.0.0.1:{port}",
        "XDG_CONFIG_HOME": str(root / "config"),
        "CAIRN_CONFIG": str(root / "cairn.toml"),
    }
    env.pop("CAIRN_DATABASE_URL", None)
    env.pop("CAIRN_BLOB_URL", None)
    env.update(extra_env)
    log = root / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*CAIRN, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_responds(f"http://127.0.0.1:{port}/healthz", process)
        yield Server(f"http://127.0.0.1:{port}", env, root / "data", log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """cairn on its embedded defaults: SQLite and a local blob folder."""
    yield from _serve(tmp_path_factory.mktemp("server"), {})


@pytest.fixture(scope="module")
def postgres_server(
    tmp_path_factory: pytest.TempPathFactory, postgres_schema_url: str
) -> Iterator[Server]:
    """cairn on PostgreSQL (a fresh schema) and an fsspec ``file://`` blob store."""
    root = tmp_path_factory.mktemp("pgserver")
    extra = {"CAIRN_DATABASE_URL": postgres_schema_url, "CAIRN_BLOB_URL": f"file://{root}/blobs"}
    yield from _serve(root, extra)


# Small limits and short timeouts, so the connection tests wait seconds, not minutes.
STRICT_LIMITS = {
    "CAIRN_MAX_HEADER_BYTES": "8192",
    "CAIRN_MAX_HEADERS": "20",
    "CAIRN_KEEP_ALIVE_TIMEOUT": "1",
    "CAIRN_HEADER_TIMEOUT": "2",
    "CAIRN_BODY_TIMEOUT": "2",
}


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """cairn with :data:`STRICT_LIMITS` on its connections."""
    yield from _serve(tmp_path_factory.mktemp("strict"), STRICT_LIMITS)


@pytest.fixture(scope="module")
def crowded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """cairn allowing four connections, kept open long enough to fill them."""
    extra = {"CAIRN_MAX_CONNECTIONS": "4", "CAIRN_KEEP_ALIVE_TIMEOUT": "60"}
    yield from _serve(tmp_path_factory.mktemp("crowded"), extra)
