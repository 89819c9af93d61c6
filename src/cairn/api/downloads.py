"""Conditional, verified downloads of blobs: ETag, Last-Modified, Content-Length, HEAD, 304."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from cairn.blobs import CHUNK_SIZE, BlobStore
from cairn.errors import BlobMissing

__all__ = ["blob_response", "etag_matches", "http_date"]


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def etag_matches(request: Request, etag: str) -> bool:
    """True when If-None-Match names ``etag`` (quoted or bare, as arXiv clients send it)."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    candidates = {c.strip().removeprefix("W/").strip('"') for c in header.split(",")}
    return "*" in candidates or etag in candidates


def content_disposition(filename: str) -> str:
    fallback = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def _stream(blobs: BlobStore, sha256: str) -> Iterator[bytes]:
    # The blob store checks the hash as it reads and raises at the end on a mismatch, so a
    # corrupted blob ends the response early instead of completing with bad bytes.
    with blobs.open(sha256) as handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


def blob_response(
    request: Request,
    blobs: BlobStore,
    *,
    sha256: str,
    size: int,
    etag: str,
    modified: datetime,
    filename: str,
    media_type: str = "application/octet-stream",
    headers: dict[str, str] | None = None,
) -> Response:
    common = {
        "ETag": f'"{etag}"',
        "Last-Modified": http_date(modified),
        "Content-Disposition": content_disposition(filename),
        **(headers or {}),
    }
    if etag_matches(request, etag):
        return Response(status_code=304, headers=common)
    common["Content-Length"] = str(size)
    if request.method == "HEAD":
        return Response(status_code=200, headers=common, media_type=media_type)
    if not blobs.exists(sha256):
        raise BlobMissing(f"Content {sha256} is missing from the blob store.")
    return StreamingResponse(_stream(blobs, sha256), headers=common, media_type=media_type)
