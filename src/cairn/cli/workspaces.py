"""`cairn workspace …`: upload files and archives, inspect, download, lock, release, delete."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from cairn.cli._common import CairnTyper, JsonOption, emit, remote_client
from cairn.client import Workspace
from cairn.client.workspaces import DEFAULT_RESUMABLE_THRESHOLD

app = CairnTyper(help="Upload workspaces: upload, check, download, lock, release and delete.")
err = Console(stderr=True)

WorkspaceArg = typer.Argument(..., help="Workspace id.")
ApiUrl = typer.Option(None, "--api-url", envvar="CAIRN_API_URL", help="Server URL.")

SUMMARY_FIELDS = [
    "id",
    "state",
    "lock_state",
    "status",
    "source_format",
    "file_count",
    "total_size",
    "checksum",
    "modified_at",
]
LIST_LABELS = {
    "state": "state",
    "lock_state": "lock",
    "status": "status",
    "file_count": "files",
    "total_size": "bytes",
}


def _transfer_bar(quiet: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
    )


OutputOption = typer.Option(Path("."), "--output", "-o", help="File or folder to write.")


def _save(total: int | None, download: Callable[[Callable[[int], None]], Path]) -> None:
    """Run ``download(progress)`` under a transfer bar and say where the file went."""
    with _transfer_bar(False) as bar:
        task = bar.add_task("download", total=total)
        saved = download(lambda n: bar.advance(task, n))
    err.print(f"Saved {saved}", highlight=False)


def _show(workspace: Workspace, as_json: bool) -> None:
    data = workspace.to_dict()
    if as_json:
        emit(data, as_json=True)
        return
    emit(data, as_json=False, columns=SUMMARY_FIELDS, title=f"Workspace {workspace.id}")
    for finding in workspace.findings:
        colour = {"fatal": "red", "warn": "yellow"}.get(finding.level, "dim")
        err.print(
            f"[{colour}]{finding.level}[/{colour}] {finding.path or '-'}: {finding.message}",
            highlight=False,
        )


def _workspace(workspace_id: int, api_url: str | None) -> Workspace:
    return remote_client(api_url).workspaces.get(workspace_id)


@app.command()
def upload(
    paths: list[Path] = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        readable=True,
        help="Files or archives (.tar.gz, .zip, ...).",
    ),
    workspace_id: int | None = typer.Option(None, "--workspace", help="Add to this workspace."),
    archive: str | None = typer.Option(
        None, "--archive", help="Target archive whose limits apply (e.g. math, data)."
    ),
    ancillary: bool = typer.Option(False, "--ancillary", help="Store under anc/."),
    organisation_id: str | None = typer.Option(None, "--org", help="Organisation id."),
    resumable: bool | None = typer.Option(
        None,
        "--resumable/--no-resumable",
        help="Force (or avoid) the resumable protocol, which sends a file in checked chunks "
        "and resumes by itself after a dropped connection. By default files of "
        "--resumable-threshold bytes or more use it.",
    ),
    resumable_threshold: int = typer.Option(
        DEFAULT_RESUMABLE_THRESHOLD,
        "--resumable-threshold",
        envvar="CAIRN_RESUMABLE_THRESHOLD",
        min=0,
        help="Size in bytes from which uploads are resumable.",
    ),
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """Upload files or archives; the first creates a workspace unless --workspace is given.

    Large files go resumably (tus 1.0): an interrupted upload resumes where the server's
    durable bytes end, by itself, without starting over.
    """
    with remote_client(api_url) as client:
        result: Workspace | None = None
        with _transfer_bar(as_json) as bar:
            for path in paths:
                task = bar.add_task(path.name, total=path.stat().st_size)

                def advance(n: int, task: Any = task) -> None:
                    bar.advance(task, n)

                result = client.workspaces.upload(
                    path,
                    workspace_id=result.id if result is not None else workspace_id,
                    archive=archive,
                    ancillary=ancillary,
                    organisation_id=organisation_id,
                    progress=advance,
                    resumable=resumable,
                    resumable_threshold=resumable_threshold,
                )
        assert result is not None
        _show(result, as_json)
        if result.status == "ERRORS":
            raise typer.Exit(1)


@app.command("list")
def list_workspaces(
    organisation_id: str | None = typer.Option(None, "--org", help="Only this organisation."),
    mine: bool = typer.Option(False, "--mine", help="Only workspaces you created."),
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """List your organisations' workspaces."""
    with remote_client(api_url) as client:
        items = [
            w.to_dict() for w in client.workspaces.list(organisation_id=organisation_id, mine=mine)
        ]
    emit(
        items,
        as_json=as_json,
        title="Workspaces",
        columns=["id", *LIST_LABELS],
        labels=LIST_LABELS,
    )


@app.command()
def show(
    workspace_id: int = WorkspaceArg, api_url: str | None = ApiUrl, as_json: bool = JsonOption
) -> None:
    """Show a workspace's summary, warnings and errors."""
    _show(_workspace(workspace_id, api_url), as_json)


@app.command()
def files(
    workspace_id: int = WorkspaceArg, api_url: str | None = ApiUrl, as_json: bool = JsonOption
) -> None:
    """List a workspace's files with size and detected type."""
    emit(
        [f.to_dict() for f in _workspace(workspace_id, api_url).files],
        as_json=as_json,
        title="Files",
        columns=["path", "size", "type", "modified_at"],
        labels={"modified_at": "modified"},
    )


@app.command()
def download(
    workspace_id: int = WorkspaceArg,
    file: str | None = typer.Option(None, "--file", help="Only this file (its path)."),
    output: Path = OutputOption,
    api_url: str | None = ApiUrl,
) -> None:
    """Download the whole workspace as .tar.gz, or one file."""
    workspace = _workspace(workspace_id, api_url)
    _save(None, lambda progress: workspace.download(output, file=file, progress=progress))


@app.command()
def log(
    workspace_id: int = WorkspaceArg, api_url: str | None = ApiUrl, as_json: bool = JsonOption
) -> None:
    """Print the workspace's source log: every action, request, warning and error."""
    entries = _workspace(workspace_id, api_url).log()
    if as_json:
        emit(entries, as_json=True)
        return
    for e in entries:
        typer.echo(f"{e['at']} {e['level'].upper():5} {e['actor_id'] or '-'} {e['message']}")


def _action(name: str, doc: str) -> None:
    def command(
        workspace_id: int = WorkspaceArg, api_url: str | None = ApiUrl, as_json: bool = JsonOption
    ) -> None:
        workspace = _workspace(workspace_id, api_url)
        _show(getattr(workspace, name.replace("-", "_"))(), as_json)

    command.__doc__ = doc
    app.command(name)(command)


@app.command("delete-file")
def delete_file(
    workspace_id: int = WorkspaceArg,
    path: str = typer.Argument(..., help="The file's path in the workspace."),
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """Delete one file from a workspace."""
    _show(_workspace(workspace_id, api_url).delete_file(path), as_json)


_action("delete-all", "Delete every file in a workspace.")
_action("lock", "Lock a workspace: no uploads or deletions until unlocked.")
_action("unlock", "Unlock a workspace.")
_action("release", "Release a workspace: you are done with it.")
_action("unrelease", "Make a released workspace active again.")
_action("delete", "Delete a workspace's files; its record stays (state DELETED).")


# --- checkpoints (issue #13, section 4) ---------------------------------------------------------

CheckpointArg = typer.Argument(..., help="Checkpoint id or checksum.")
CHECKPOINT_FIELDS = ["id", "checksum", "file_count", "total_size", "created_at"]
CHECKPOINT_LABELS = {"file_count": "files", "total_size": "bytes", "created_at": "saved"}


@app.command()
def checkpoint(
    workspace_id: int = WorkspaceArg, api_url: str | None = ApiUrl, as_json: bool = JsonOption
) -> None:
    """Save a workspace's current files as a checkpoint (at most 10 per workspace)."""
    saved = _workspace(workspace_id, api_url).save_checkpoint()
    emit(saved.to_dict(), as_json=as_json, columns=CHECKPOINT_FIELDS, title="Checkpoint")


@app.command()
def checkpoints(
    workspace_id: int = WorkspaceArg, api_url: str | None = ApiUrl, as_json: bool = JsonOption
) -> None:
    """List a workspace's checkpoints, newest first."""
    emit(
        [c.to_dict() for c in _workspace(workspace_id, api_url).checkpoints],
        as_json=as_json,
        title="Checkpoints",
        columns=CHECKPOINT_FIELDS,
        labels=CHECKPOINT_LABELS,
    )


@app.command()
def restore(
    workspace_id: int = WorkspaceArg,
    key: str = CheckpointArg,
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """Make a workspace's files exactly a checkpoint's (refused while locked)."""
    _show(_workspace(workspace_id, api_url).restore(key), as_json)


@app.command("download-checkpoint")
def download_checkpoint(
    workspace_id: int = WorkspaceArg,
    key: str = CheckpointArg,
    output: Path = OutputOption,
    api_url: str | None = ApiUrl,
) -> None:
    """Download a checkpoint's files as .tar.gz."""
    found = _workspace(workspace_id, api_url).checkpoint(key)
    _save(found.package_size, lambda progress: found.download(output, progress=progress))


@app.command("delete-checkpoint")
def delete_checkpoint(
    workspace_id: int = WorkspaceArg, key: str = CheckpointArg, api_url: str | None = ApiUrl
) -> None:
    """Delete one checkpoint; the workspace's files stay."""
    _workspace(workspace_id, api_url).checkpoint(key).delete()
    err.print(f"Deleted checkpoint {key}", highlight=False)


@app.command("delete-checkpoints")
def delete_checkpoints(workspace_id: int = WorkspaceArg, api_url: str | None = ApiUrl) -> None:
    """Delete every checkpoint of a workspace; its files stay."""
    _workspace(workspace_id, api_url).delete_checkpoints()
    err.print(f"Deleted the checkpoints of workspace {workspace_id}", highlight=False)


# --- removed files: the quarantine (issue #13, section 3) ----------------------------------------

RemovedArg = typer.Argument(..., help="Removed file id (from `cairn workspace removed`).")
REMOVED_FIELDS = ["id", "path", "rule", "size", "removed_at", "reason"]
REMOVED_LABELS = {"size": "bytes", "removed_at": "removed"}


@app.command()
def removed(
    workspace_id: int = WorkspaceArg, api_url: str | None = ApiUrl, as_json: bool = JsonOption
) -> None:
    """List the files the checks removed from a workspace (or later uploads replaced), newest
    first; download one with `download-removed`, put one back with `restore-removed`."""
    emit(
        [r.to_dict() for r in _workspace(workspace_id, api_url).removed],
        as_json=as_json,
        title="Removed files",
        columns=REMOVED_FIELDS,
        labels=REMOVED_LABELS,
    )


@app.command("download-removed")
def download_removed(
    workspace_id: int = WorkspaceArg,
    entry: str = RemovedArg,
    output: Path = OutputOption,
    api_url: str | None = ApiUrl,
) -> None:
    """Download a removed file's bytes, as they were when it was removed."""
    found = _workspace(workspace_id, api_url).removed_file(entry)
    _save(found.size, lambda progress: found.download(output, progress=progress))


@app.command("restore-removed")
def restore_removed(
    workspace_id: int = WorkspaceArg,
    entry: str = RemovedArg,
    path: str | None = typer.Option(None, "--path", help="Restore under this path instead."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a current file of that name (it is kept as removed)."
    ),
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """Put a removed file back into the workspace, through the same checks as an upload.
    A current file of the same name is refused unless --overwrite."""
    workspace = _workspace(workspace_id, api_url)
    _show(workspace.restore_removed(entry, path=path, overwrite=overwrite), as_json)
