"""Signed, expiring, single-use URLs for raw uploads and downloads, and the login id token.

A signature is an HMAC-SHA256 over (action, file id, expiry, nonce) with a server secret kept
in the data folder (created on first use, mode 0600), so URLs survive restarts and cannot be
forged without it. Each nonce may be used once (``UsedUrl`` rows); expiry is checked first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.exc import IntegrityError as SQLIntegrityError
from sqlalchemy.orm import Session

from cairn.db.base import utcnow
from cairn.errors import Forbidden
from cairn.processing.models import UsedUrl

__all__ = ["SignedUrl", "Signer"]

SECRET_FILE = "processing-url-secret"


@dataclass(frozen=True)
class SignedUrl:
    action: str  # "upload" or "download"
    file_id: str
    expires: int  # Unix seconds
    nonce: str
    signature: str

    def query(self) -> str:
        fields: dict[str, str | int] = {"expires": self.expires, "nonce": self.nonce}
        _, _, blob = self.action.partition(":")
        if blob:  # a download URL names its blob, so it serves for its hour like a presigned URL
            fields["blob"] = blob
        fields["signature"] = self.signature
        return urlencode(fields)


class Signer:
    """Signs and checks URLs (and id tokens) with the installation's secret."""

    def __init__(self, data_dir: Path) -> None:
        self._secret = _load_secret(data_dir)

    def _mac(self, message: str) -> str:
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()

    def sign(self, action: str, file_id: str, lifetime: timedelta) -> SignedUrl:
        expires = int((utcnow() + lifetime).timestamp())
        nonce = secrets.token_hex(16)
        mac = self._mac(f"{action}\n{file_id}\n{expires}\n{nonce}")
        return SignedUrl(action, file_id, expires, nonce, mac)

    def check(
        self,
        session: Session,
        *,
        action: str,
        file_id: str,
        expires: int,
        nonce: str,
        signature: str,
    ) -> None:
        """Accept a signed URL once: ``Forbidden`` if forged, expired or already used."""
        expected = self._mac(f"{action}\n{file_id}\n{expires}\n{nonce}")
        if not hmac.compare_digest(expected, signature):
            raise Forbidden("This signed URL is not valid.")
        if expires < utcnow().timestamp():
            raise Forbidden("This signed URL has expired; ask for a new one.")
        try:
            with session.begin_nested():
                session.add(UsedUrl(nonce=nonce))
                session.flush()
        except SQLIntegrityError:
            raise Forbidden("This signed URL has already been used; ask for a new one.") from None

    def id_token(self, claims: dict[str, Any], lifetime: timedelta) -> str:
        """A JWT (HS256) carrying ``claims`` plus issue and expiry times."""
        now = datetime.now().astimezone()
        body = {**claims, "iat": int(now.timestamp()), "exp": int((now + lifetime).timestamp())}
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(json.dumps(body).encode())
        mac = hmac.new(self._secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(mac)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _load_secret(data_dir: Path) -> bytes:
    path = data_dir / SECRET_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret)
    try:
        os.link(temporary, path)  # the first writer wins; everyone then reads the same secret
    except FileExistsError:
        pass
    finally:
        temporary.unlink()
    return bytes.fromhex(path.read_text().strip())
