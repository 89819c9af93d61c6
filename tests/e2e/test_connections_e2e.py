"""Connection limits on a real server, driven through raw sockets: oversize and endless heads,
silent, half-sent and stalled requests are cut, and a crowd beyond the limit gets 503."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e

# Bounds how long a test waits for the server to act (the strict server acts within 2 s);
# never an assertion on speed.
WAIT = 20.0


@contextmanager
def connect(server: Server) -> Iterator[socket.socket]:
    url = urlsplit(server.url)
    assert url.hostname is not None and url.port is not None
    with socket.create_connection((url.hostname, url.port), timeout=WAIT) as sock:
        yield sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; a reset ends it too (no timeout does)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def read_response(sock: socket.socket) -> bytes:
    """One response with a Content-Length body, leaving the connection open; its status line."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head.split(b"\r\n", 1)[0]


def healthy(server: Server) -> bool:
    return httpx.get(f"{server.url}/healthz", timeout=WAIT).status_code == 200


def test_an_oversize_head_gets_431_while_healthz_answers(strict_server: Server) -> None:
    with connect(strict_server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: cairn\r\nX-Big: " + b"a" * 4000)
        assert healthy(strict_server)  # another connection, while this head is unfinished
        sock.sendall(b"a" * 8000)
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"connection: close" in answer.lower()
    assert healthy(strict_server)


def test_an_endless_header_line_is_cut_off(strict_server: Server) -> None:
    """The load run's 100 MB header line, in 1 MB: the server stops reading at its limit."""
    with connect(strict_server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: cairn\r\nX-Big: ")
        try:
            for _ in range(64):
                sock.sendall(b"a" * 16384)
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed by the server: the point
        answer = read_all(sock)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
    assert healthy(strict_server)


def test_too_many_header_fields_get_431(strict_server: Server) -> None:
    fields = b"".join(b"X-Field-%d: %d\r\n" % (i, i) for i in range(25))
    with connect(strict_server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: cairn\r\n" + fields + b"\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431 ")
    few = {f"X-Field-{i}": str(i) for i in range(10)}
    assert httpx.get(f"{strict_server.url}/healthz", headers=few, timeout=WAIT).status_code == 200


def test_a_silent_connection_is_closed(strict_server: Server) -> None:
    with connect(strict_server) as sock:
        assert read_all(sock) == b""


def test_a_half_sent_head_gets_408(strict_server: Server) -> None:
    with connect(strict_server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: cairn\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_a_trickled_head_is_cut_too(strict_server: Server) -> None:
    """One byte every half second never completes the head in time, however often it arrives."""
    head = b"GET /healthz HTTP/1.1\r\nHost: cairn\r\nX-Slow: " + b"a" * 40 + b"\r\n\r\n"
    with connect(strict_server) as sock:
        try:
            for byte in head:
                sock.sendall(bytes([byte]))
                time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")


def _login_head(length: int) -> bytes:
    return (
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: cairn\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % length
    )


def test_a_stalled_body_gets_408(strict_server: Server) -> None:
    with connect(strict_server) as sock:
        sock.sendall(_login_head(100) + b'{"email": ')
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert healthy(strict_server)


def test_a_slow_but_steady_body_is_not_cut(strict_server: Server) -> None:
    """Pauses shorter than the body timeout, adding up to longer than it: answered normally."""
    body = json.dumps({"email": "nobody@cairn.example", "password": "not-the-password"}).encode()
    pieces = [body[i : i + 10] for i in range(0, len(body), 10)]
    with connect(strict_server) as sock:
        sock.sendall(_login_head(len(body)))
        for piece in pieces:
            time.sleep(0.5)
            sock.sendall(piece)
        status_line = read_response(sock)
    assert len(pieces) * 0.5 > 2  # longer in total than the strict server's body timeout
    assert status_line == b"HTTP/1.1 401 Unauthorized"


def test_more_connections_than_the_limit_get_503_and_the_server_survives(
    crowded_server: Server,
) -> None:
    request = b"GET /healthz HTTP/1.1\r\nHost: cairn\r\n\r\n"
    with ExitStack() as stack:
        held = [stack.enter_context(connect(crowded_server)) for _ in range(4)]
        for sock in held:  # each answered once, so each is open on the server's side
            sock.sendall(request)
            assert read_response(sock) == b"HTTP/1.1 200 OK"
        refused = [stack.enter_context(connect(crowded_server)) for _ in range(20)]
        answers = [read_all(sock) for sock in refused]
        assert all(a.startswith(b"HTTP/1.1 503 ") for a in answers), answers[:3]
        for sock in held:  # the connections within the limit still work
            sock.sendall(request)
            assert read_response(sock) == b"HTTP/1.1 200 OK"
    assert healthy(crowded_server)
