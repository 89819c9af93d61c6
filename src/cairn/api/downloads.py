"""Conditional, verified downloads of blobs: ETag, Last-Modified, Content-Length, HEAD, 304."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import StreamingResponse

from cairn.blobs import CHUNK_SIZE, BlobStore
from cairn.errors import BlobMissing

__all__ = [
    "FILE_RESPONSES",
    "PACKAGE_RESPONSES",
    "blob_response",
    "client_has",
    "etag_matches",
    "http_date",
]


def _binary(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": description,
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}},
        },
        304: {"description": "Not modified: If-None-Match named the current ETag."},
    }


FILE_RESPONSES = _binary("application/octet-stream", "The file's bytes.")
PACKAGE_RESPONSES = _binary("application/gzip", "The workspace as one .tar.gz.")


def http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def etag_matches(request: Request, etag: str) -> bool:
    """True when If-None-Match names ``etag`` (quoted or bare, as arXiv clients send it)."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    candidates = {c.strip().removeprefix("W/").strip('"') for c in header.split(",")}
    return "*" in candidates or etag in candidates


def client_has(request: Request) -> Callable[[str], bool]:
    """The services' ``client_has``: does the request's If-None-Match name this ETag?"""
    return lambda etag: etag_matches(request, etag)


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
    sha256: str | None,
    size: int | None,
    etag: str,
    modified: datetime,
    filename: str,
    media_type: str = "application/octet-stream",
    headers: dict[str, str] | None = None,
) -> Response:
    """A blob's bytes, or 304, or (HEAD) its headers; a HEAD of content not built yet has no
    ``sha256`` and answers without Content-Length rather than build it."""
    common = {
        "ETag": f'"{etag}"',
        "Last-Modified": http_date(modified),
        "Content-Disposition": content_disposition(filename),
        **(headers or {}),
    }
    if etag_matches(request, etag):
        return Response(status_code=304, headers=common)
    if size is not None:
        common["Content-Length"] = str(size)
    if request.method == "HEAD" or sha256 is None:
        response = Response(status_code=200, headers=common, media_type=media_type)
        if size is None:
            del response.headers["content-length"]  # unknown until built; not zero
        return response
    if not blobs.exists(sha256):
        raise BlobMissing(f"Content {sha256} is missing from the blob store.")
    return StreamingResponse(_stream(blobs, sha256), headers=common, media_type=media_type)
