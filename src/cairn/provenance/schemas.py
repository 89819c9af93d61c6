"""What the runs API answers: runs in listings and in full, file versions, lineage."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from cairn.provenance.models import FileVersion
from cairn.provenance.service import Lineage, RunView, run_row, version_dict

if TYPE_CHECKING:
    from cairn.provenance.received import ReceivedRun

__all__ = [
    "FileVersionRead",
    "LineageEdge",
    "LineageRead",
    "PublishedRunRead",
    "RunBrief",
    "RunRead",
    "lineage_read",
    "published_run_read",
    "run_brief",
    "run_read",
]


class RunBrief(BaseModel):
    seq: int = Field(description="The store's run number (RunManager's seq).")
    run_id: str = Field(description="The run's UUID.")
    kind: str = Field(description="script, program, console, block, or a platform activity.")
    script: str | None = Field(description="The script or program run, or the activity.")
    tags: list[str] = Field(description="The run's tags.")
    start_time: datetime = Field(description="When it started (UTC).")
    end_time: datetime | None = Field(description="When it ended (UTC); null while running.")
    status: str = Field(description="running, ok, error or killed.")
    exit_code: int | None = Field(description="The exit status.")
    error_message: str | None = Field(description="Why it failed, if it did.")


class FileVersionRead(BaseModel):
    path: str = Field(description="Where the file was (undecodable bytes shown as \\xNN).")
    sha256: str | None = Field(description="SHA-256 of its content; null if unreadable.")
    size: int | None = Field(description="Size in bytes.")
    modified_time: datetime | None = Field(description="Its modification time.")
    created_time: datetime | None = Field(description="Its status-change (creation) time.")
    archived: bool = Field(description="Whether this exact version is kept in the store.")
    flagged: str | None = Field(description="Why it was not kept, or another remark.")


class UsedFileRead(FileVersionRead):
    access: str = Field(description="read, or execute for the script itself.")


class RunRead(RunBrief):
    script_sha256: str | None = Field(description="SHA-256 of the script or program.")
    arguments: list[str] = Field(description="Its command-line arguments.")
    cwd: str | None = Field(description="The working directory.")
    traceback: str | None = Field(description="The traceback of an error.")
    user: str | None = Field(description="Who ran it.")
    host: str | None = Field(description="Where it ran.")
    os: str | None = Field(description="The operating system.")
    interpreter: str | None = Field(description="The interpreter or program.")
    interpreter_version: str | None = Field(description="Its version.")
    packages: list[str] = Field(description="Installed packages, name==version.")
    used: list[UsedFileRead] = Field(description="The file versions it used.")
    generated: list[FileVersionRead] = Field(description="The file versions it generated.")


class LineageFile(FileVersionRead):
    id: int = Field(description="The version's id within this answer's edges.")


class LineageEdge(BaseModel):
    run_id: str = Field(description="The run.")
    file_id: int = Field(description="The file version (an id of ``files``).")
    access: str = Field(description="read / execute (used) or write (generated).")


class LineageRead(BaseModel):
    start: str = Field(description="What the trace started from.")
    direction: str = Field(description="upstream, downstream or both.")
    join: str = Field(description="How runs were joined: hash, path or strict.")
    runs: list[RunBrief] = Field(description="The linked runs.")
    files: list[LineageFile] = Field(description="The file versions between them.")
    edges: list[LineageEdge] = Field(description="Which run used or generated which version.")


class PathVersionRun(BaseModel):
    run_id: str = Field(description="The run's UUID.")
    seq: int = Field(description="The store's run number.")
    script: str | None = Field(description="The script or program run, or the activity.")
    path: str = Field(description="The path as the run saw it.")


class PathVersionRead(BaseModel):
    sha256: str | None = Field(description="The content's SHA-256 (null: never hashed).")
    size: int | None = Field(description="Its size in bytes.")
    first_seen: datetime = Field(description="When this content was first seen at the path.")
    generated_by: list[PathVersionRun] = Field(description="The runs that wrote it.")
    used_by: list[PathVersionRun] = Field(description="The runs that read or executed it.")


def run_brief(row: dict[str, Any]) -> RunBrief:
    return RunBrief.model_validate(row)


class PublishedRunRead(BaseModel):
    run: RunRead = Field(description="The read-only run the package became (kind 'published').")
    publication_id: str = Field(description="This server's publication record.")
    identifier: str | None = Field(description="The package's own identifier (urn:uuid:…).")
    doi: str | None = Field(description="The DOI a minting plugin gave it, if any.")
    package_sha256: str = Field(description="SHA-256 of the uploaded zip.")


def published_run_read(received: ReceivedRun) -> PublishedRunRead:
    return PublishedRunRead(
        run=run_read(received.view),
        publication_id=received.publication_id,
        identifier=received.identifier,
        doi=received.doi,
        package_sha256=received.package_sha256,
    )


def run_read(view: RunView) -> RunRead:
    return RunRead.model_validate(view.as_dict())


def file_version_read(version: FileVersion) -> FileVersionRead:
    return FileVersionRead.model_validate(version_dict(version))


def lineage_read(found: Lineage) -> LineageRead:
    return LineageRead.model_validate(found.as_dict())


def brief_of(view: RunView) -> RunBrief:
    return run_brief(run_row(view.run, view.tags))
