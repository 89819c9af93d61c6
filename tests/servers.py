"""Real local servers for delivery tests (issue #16): an S3 server (moto's server mode, a
separate process enforcing IAM credentials), an SMTP server (aiosmtpd) whose mail the tests
read, and an HTTP server recording what webhooks POST. Loaded through the root conftest's
``pytest_plugins``; each fixture starts its server once per module on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Any, *, timeout: float = 30.0, what: str = "the condition") -> Any:
    """Poll ``check()`` until it returns something true; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} never happened")


# --- S3 -----------------------------------------------------------------------------------------


@dataclass
class S3Server:
    """moto's S3 server with IAM enforced: ``key``/``secret`` are a real IAM user's keys
    (allowed s3:* and kms:*); any other key is refused."""

    endpoint_url: str
    key: str
    secret: str

    def client(self, *, key: str | None = None, secret: str | None = None) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=key or self.key,
            aws_secret_access_key=secret or self.secret,
        )

    def kms_key(self) -> str:
        import boto3

        kms = boto3.client(
            "kms",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
        )
        arn: str = kms.create_key(Description="cairn test")["KeyMetadata"]["Arn"]
        return arn

    def bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name


# The setup takes this many requests before moto starts checking credentials.
_SETUP_ACTIONS = 3


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    import boto3

    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    env = {
        **os.environ,
        "INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_ACTIONS),
        "AWS_ACCESS_KEY_ID": "setup",
        "AWS_SECRET_ACCESS_KEY": "setup",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:

        def answers() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return process.poll() is not None  # stop waiting for a dead server

        wait_until(answers, timeout=60, what="the moto server answering")
        assert process.poll() is None, "the moto server exited"
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName="dispatcher")
        iam.put_user_policy(
            UserName="dispatcher",
            PolicyName="all-s3",
            PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
            '"Action": ["s3:*", "kms:*"], "Resource": "*"}]}',
        )
        keys = iam.create_access_key(UserName="dispatcher")["AccessKey"]
        yield S3Server(endpoint, keys["AccessKeyId"], keys["SecretAccessKey"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


# --- SMTP ---------------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """What the SMTP server received: (envelope recipients, parsed message) per email."""

    host: str
    port: int
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    def messages(self) -> list[tuple[list[str], EmailMessage]]:
        with self.lock:
            return list(self.received)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpt, m in self.messages() if address in rcpt]

    def clear(self) -> None:
        with self.lock:
            self.received.clear()


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller

    mailbox = Mailbox("127.0.0.1", free_port())
    controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def mailbox(smtp_server: Mailbox) -> Iterator[Mailbox]:
    """The module's SMTP server, emptied for this test."""
    smtp_server.clear()
    yield smtp_server
    smtp_server.clear()


# --- HTTP receiver (webhooks, SMS gateway) ------------------------------------------------------


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server on a free local port, answering with ``handler`` on its own thread,
    for as long as the context lasts; yields its base URL (``http://127.0.0.1:PORT``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server recording every POST; answers ``status``."""

    url: str
    status: int = 200
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def got(self) -> list[Received]:
        with self.lock:
            return list(self.requests)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            target = box[0]
            with target.lock:
                target.requests.append(Received(self.path, dict(self.headers.items()), body))
            self.send_response(target.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with http_server(Handler) as base:
        box.append(Receiver(f"{base}/hook"))
        yield box[0]
