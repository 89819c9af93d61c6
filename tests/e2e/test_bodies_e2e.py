"""Against a real server over raw sockets: a refused request is answered before its body is
read, and a huge body is cut at its route's limit instead of being buffered."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e

GiB = 1024**3
CHUNK = b"x" * (1024 * 1024)


def _connect(server: Server) -> socket.socket:
    url = urlsplit(server.url)
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=30)
    return sock


def _status(sock: socket.socket) -> int:
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            break
        head += chunk
    return int(head.split(b" ", 2)[1])


def _answered(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        return bool(sock.recv(1, socket.MSG_PEEK))
    except BlockingIOError:
        return False
    finally:
        sock.setblocking(True)


@pytest.mark.parametrize("path", ["/api/v1/workspaces/upload", "/filemanager/api"])
def test_an_upload_without_a_token_is_refused_before_its_body(server: Server, path: str) -> None:
    with _connect(server) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {2 * GiB}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n\r\n".encode()
        )
        # Not one byte of the 2 GiB body is sent: the answer comes from the headers alone.
        assert _status(sock) == 401
    scratch = server.data_dir / "tmp"
    assert not scratch.exists() or not any(scratch.glob("upload-*"))


def test_a_huge_body_to_a_json_route_is_cut_at_the_request_limit(server: Server) -> None:
    limit = 64 * 1024 * 1024  # the default CAIRN_MAX_REQUEST_BYTES
    for content_type in ("application/json", "multipart/form-data; boundary=b"):
        with _connect(server) as sock:
            sock.sendall(
                b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n"
                b"Transfer-Encoding: chunked\r\nContent-Type: "
                + content_type.encode()
                + b"\r\n\r\n"
            )
            sent = 0
            while sent < GiB and not _answered(sock):
                try:
                    sock.sendall(b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(CHUNK)
            # The server stopped reading near the limit: far less than the gigabyte was taken.
            assert sent < limit + 32 * 1024 * 1024, content_type
            assert _status(sock) == 413


def test_a_declared_huge_body_is_refused_at_once(server: Server) -> None:
    with _connect(server) as sock:
        sock.sendall(
            f"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: {GiB}\r\n"
            "Content-Type: application/json\r\n\r\n".encode()
        )
        assert _status(sock) == 413
    with _connect(server) as sock:
        sock.sendall(
            b"POST /api/v1/workspaces/upload HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Length: {16 * GiB}\r\n".encode()
            + b"Authorization: Bearer forged\r\n"
            + b"Content-Type: multipart/form-data; boundary=b\r\n\r\n"
        )
        assert _status(sock) == 413  # over the 8 GiB upload limit: refused before reading
