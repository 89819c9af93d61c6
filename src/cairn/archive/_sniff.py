"""The document's media type: the declared one when specific, otherwise sniffed from its head."""

from __future__ import annotations

__all__ = ["document_type"]

_GENERIC = {"", "application/octet-stream", "application/unknown", "binary/octet-stream"}
_MAGIC = (
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"<?xml", "application/xml"),
    (b"{\\rtf", "application/rtf"),
    (b"\xd0\xcf\x11\xe0", "application/x-ole-storage"),
)


def document_type(declared: str | None, head: bytes) -> str:
    declared = (declared or "").split(";")[0].strip().lower()
    if declared not in _GENERIC and "/" in declared and len(declared) <= 200:
        return declared
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the end of the head is still text.
        try:
            head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return "application/octet-stream"
    return "text/plain" if b"\0" not in head else "application/octet-stream"
