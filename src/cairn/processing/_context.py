"""What a component function sees while it runs in a worker (its inputs, options and outputs),
and what a dispatcher sees when it sends a succeeded execution's outputs on."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from cairn.blobs import BlobStore
    from cairn.config import Settings

__all__ = ["ComponentContext", "DispatchContext", "DispatchedFile", "Output"]


@dataclass(frozen=True)
class Output:
    """One output data item: its files (all of ``file_type``) and name."""

    name: str
    file_type: str
    paths: Sequence[Path]


@dataclass
class ComponentContext:
    """Handed to a component function. ``inputs[n]`` holds the local files of input ``n + 1``;
    write outputs under ``work_dir`` and declare them with ``add_output``."""

    inputs: Sequence[Sequence[Path]]
    options: Mapping[str, Any]
    work_dir: Path
    outputs: list[Output] = field(default_factory=list)
    _send: Callable[[str, Any], None] = field(default=lambda kind, value: None, repr=False)

    def add_output(self, name: str, file_type: str, *paths: Path) -> None:
        self.outputs.append(Output(name, file_type, list(paths)))

    def log(self, message: str) -> None:
        self._send("log", message)

    def progress(self, percent: int) -> None:
        """Progress of this component, 0-100."""
        self._send("progress", max(0, min(100, int(percent))))


@dataclass(frozen=True)
class DispatchedFile:
    """One output file a dispatcher sends: which component made it, in which data item."""

    component: str
    chain_index: int
    data_name: str
    file_name: str
    file_type: str
    sha256: str
    file_id: str = ""
    size: int = 0


@dataclass
class DispatchContext:
    """Handed to a dispatcher's ``dispatch`` in the server once an execution has succeeded:
    the files to send (the last component's, or every component's with
    ``dispatch_intermediate``), the dispatcher's typed options and the server's settings."""

    execution_id: str
    process_name: str
    options: Mapping[str, Any]
    files: Sequence[DispatchedFile]
    settings: Settings
    blobs: BlobStore
    messages: list[str] = field(default_factory=list)
    organisation_id: str = ""
    service_name: str = ""
    # Lower-cased email addresses of the organisation's registered users (the Email
    # dispatcher sends only to them).
    member_emails: frozenset[str] = frozenset()
    _link: Callable[[DispatchedFile], str] | None = field(default=None, repr=False)

    def open(self, file: DispatchedFile) -> BinaryIO:
        """The file's bytes, from the blob store."""
        return self.blobs.open(file.sha256)

    def log(self, message: str) -> None:
        """A line for the execution's log (its last component's)."""
        self.messages.append(message)

    def link(self, file: DispatchedFile) -> str:
        """A signed download URL of the file (valid once, for ``dispatch_link_lifetime``)."""
        if self._link is None:
            raise RuntimeError("this server gives no download links")
        return self._link(file)
