"""Upload bodies: a multipart form streamed once, straight into the data folder's scratch area.

Upload routes declare no body parameters, so the caller is authenticated (and the workspace
checked, by ``workspaces.service.upload``) before a byte of the body is read. The file part is
written to one scratch file next to the blob store, where the unpacker reads it: nothing is
spooled to /tmp or held in memory. It is hashed as it is written, so the upload's provenance
activity names the file it used without reading it again. Text fields are small, UTF-8 and
free of NUL bytes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from cairn.errors import BadRequest, Invalid
from cairn.tempfiles import scratch_file
from cairn.workspaces.service import Receive, UploadRequest

__all__ = [
    "UPLOAD_FIELDS",
    "UPLOAD_MARK",
    "is_upload_route",
    "receive_upload",
    "upload_openapi",
]

UPLOAD_MARK = "x-cairn-upload"
"""OpenAPI extension on upload routes: they take the upload body limit, not the request one."""

FILE_FIELD = "file"
UPLOAD_FIELDS: Mapping[str, tuple[int, str]] = {
    # name: (longest value, description)
    "archive": (100, "Target archive whose size and type limits apply (e.g. math, data)."),
    "ancillary": (5, "'true' to store the files under anc/ as ancillary."),
    "organisation_id": (64, "Organisation to create the workspace in (if you have several)."),
}
_WRITE_BATCH = 1024 * 1024
_TRUE = {"true", "1", "yes", "on"}


def upload_openapi(fields: Mapping[str, tuple[int, str]] = UPLOAD_FIELDS) -> dict[str, Any]:
    """``openapi_extra`` for an upload route: the multipart body it reads itself, and the mark."""
    properties: dict[str, Any] = {
        FILE_FIELD: {
            "type": "string",
            "format": "binary",
            "description": "The file or archive (.tar, .tar.gz, .tar.bz2, .tar.xz, .zip, .gz).",
        }
    }
    for name, (longest, description) in fields.items():
        properties[name] = {"type": "string", "maxLength": longest, "description": description}
    schema = {"type": "object", "properties": properties, "required": [FILE_FIELD]}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}},
        UPLOAD_MARK: True,
    }


def is_upload_route(route: object) -> bool:
    extra = getattr(route, "openapi_extra", None)
    return bool(extra and extra.get(UPLOAD_MARK))


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)
    skip: bool = False


@dataclass
class ReceivedForm:
    """The text fields, and the file part as a scratch file (``None`` when none was sent)."""

    fields: dict[str, str] = field(default_factory=dict)
    path: Path | None = None
    filename: str | None = None
    size: int = 0
    sha256: str | None = None


class _FormReader:
    """python-multipart callbacks collecting fields and writing the one file part to disk."""

    def __init__(self, work_dir: Path, fields: Mapping[str, tuple[int, str]]) -> None:
        self.work_dir = work_dir
        self.limits = fields
        self.form = ReceivedForm()
        self.part = _Part()
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.disposition = b""
        self.pending = bytearray()
        self.handle: IO[bytes] | None = None
        self.digest = hashlib.sha256()
        self.ended = False

    # --- callbacks (called synchronously by the parser) ---

    def on_part_begin(self) -> None:
        self.part = _Part()
        self.disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if bytes(self.header_name).lower() == b"content-disposition":
            self.disposition = bytes(self.header_value)
        self.header_name.clear()
        self.header_value.clear()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        if b"name" not in options:
            raise BadRequest("Every form part needs a name (Content-Disposition: form-data).")
        self.part.name = self._text(options[b"name"], "part name")
        if b"filename" in options:
            self.part.filename = self._text(options[b"filename"], "file name")
        if self.part.name == FILE_FIELD:
            if self.form.path is not None:
                raise BadRequest("Send one file per upload: the form has two 'file' parts.")
            fd, self.form.path = scratch_file(self.work_dir, "upload-")
            self.handle = os.fdopen(fd, "wb")
            self.form.filename = self.part.filename or ""
        elif self.part.name in self.limits:
            if self.part.name in self.form.fields:
                raise BadRequest(f"The form field '{self.part.name}' is sent twice.")
        else:
            self.part.skip = True  # not ours: read past it

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.skip:
            return
        if self.part.name == FILE_FIELD:
            self.pending += data[start:end]
            self.form.size += end - start
            return
        self.part.data += data[start:end]
        longest = self.limits[self.part.name][0]
        if len(self.part.data) > 4 * longest:  # bytes, so allow multi-byte characters
            raise Invalid(f"The form field '{self.part.name}' is longer than {longest} characters.")

    def on_part_end(self) -> None:
        if self.part.skip or self.part.name == FILE_FIELD:
            return
        value = self._text(bytes(self.part.data), f"form field '{self.part.name}'")
        longest = self.limits[self.part.name][0]
        if len(value) > longest:
            raise Invalid(f"The form field '{self.part.name}' is longer than {longest} characters.")
        self.form.fields[self.part.name] = value

    @staticmethod
    def _text(raw: bytes, what: str) -> str:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid(f"The {what} is not UTF-8 text.") from None
        if "\0" in text:
            raise Invalid(f"The {what} contains a NUL character.")
        return text

    def on_end(self) -> None:
        self.ended = True

    # --- driving ---

    async def flush(self, force: bool = False) -> None:
        if (
            self.handle is not None
            and self.pending
            and (force or len(self.pending) >= _WRITE_BATCH)
        ):
            chunk, self.pending = bytes(self.pending), bytearray()
            await anyio.to_thread.run_sync(self._write, self.handle, chunk)

    def _write(self, handle: IO[bytes], chunk: bytes) -> None:
        self.digest.update(chunk)  # in the worker thread, beside the write (hashlib drops the GIL)
        handle.write(chunk)

    async def read(self, request: Request) -> ReceivedForm:
        content_type, params = parse_options_header(request.headers.get("content-type"))
        if content_type != b"multipart/form-data" or b"boundary" not in params:
            return self.form  # no form at all: the caller reports the missing file
        callbacks: Any = {
            name: getattr(self, name)
            for name in (
                "on_part_begin",
                "on_header_field",
                "on_header_value",
                "on_header_end",
                "on_headers_finished",
                "on_part_data",
                "on_part_end",
                "on_end",
            )
        }
        parser = MultipartParser(params[b"boundary"], callbacks)
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                await self.flush()
            parser.finalize()
            if not self.ended:  # cut short: an interrupted upload is not a smaller one
                raise BadRequest("The multipart body ends before its closing boundary.")
            await self.flush(force=True)
            if self.form.path is not None:
                self.form.sha256 = self.digest.hexdigest()
        except MultipartParseError as exc:
            raise BadRequest(f"The multipart body is malformed: {exc}") from exc
        except ClientDisconnect as exc:
            raise BadRequest("The upload was interrupted before its end.") from exc
        finally:
            if self.handle is not None:
                self.handle.close()
        return self.form


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


def receive_upload(
    request: Request, work_dir: Path, fields: Mapping[str, tuple[int, str]] = UPLOAD_FIELDS
) -> Receive:
    """The ``Receive`` an upload service calls: it reads the form (its text ``fields``), checks
    that a non-empty, named file came (refused in the arXiv file manager's words, which both
    APIs share), and removes the scratch file when the upload is done or failed."""

    @contextmanager
    def receive() -> Iterator[UploadRequest]:
        reader = _FormReader(work_dir, fields)
        try:
            form = anyio.from_thread.run(reader.read, request)
            if form.path is None:
                raise BadRequest("missing file/archive payload")
            if not form.filename:
                raise BadRequest("file argument missing filename or file not selected")
            if form.size == 0:
                raise BadRequest("file payload is zero length")
            yield UploadRequest(
                path=form.path,
                filename=form.filename,
                archive=form.fields.get("archive") or None,
                ancillary=_flag(form.fields.get("ancillary")),
                organisation_id=form.fields.get("organisation_id") or None,
                sha256=form.sha256,
            )
        finally:
            if reader.form.path is not None:
                reader.form.path.unlink(missing_ok=True)

    return receive
