"""`cairn workspace …`: upload files and archives, inspect, download, lock, release, delete."""

from __future__ import annotations

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
from cairn.client import Workspace, Workspaces

app = CairnTyper(help="Upload workspaces: upload, check, download, lock, release and delete.")
err = Console(stderr=True)

WorkspaceArg = typer.Argument(..., help="Workspace id (upload_id).")
ApiUrl = typer.Option(None, "--api-url", envvar="CAIRN_API_URL", help="Server URL.")

SUMMARY_FIELDS = [
    "upload_id",
    "workspace_state",
    "lock_state",
    "upload_status",
    "source_format",
    "upload_total_size",
    "checksum",
    "modified_datetime",
]


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


def _show(workspace: Workspace | dict[str, Any], as_json: bool) -> None:
    data = workspace.to_dict() if isinstance(workspace, Workspace) else workspace
    if as_json:
        emit(data, as_json=True)
        return
    emit(
        data,
        as_json=False,
        columns=[k for k in SUMMARY_FIELDS if k in data],
        title=f"Workspace {data['upload_id']}",
    )
    for level, path, message in data.get("errors", []):
        colour = {"fatal": "red", "warn": "yellow"}.get(level, "dim")
        err.print(f"[{colour}]{level}[/{colour}] {path or '-'}: {message}", highlight=False)


def _workspace(workspace_id: int, api_url: str | None) -> Workspace:
    return Workspaces(remote_client(api_url)).get(workspace_id)


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
    archive: str | None = typer.Option(None, "--archive", help="Target archive (limits)."),
    ancillary: bool = typer.Option(False, "--ancillary", help="Store under anc/."),
    organisation_id: str | None = typer.Option(None, "--org", help="Organisation id."),
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """Upload files or archives; the first creates a workspace unless --workspace is given."""
    with remote_client(api_url) as client:
        workspaces = Workspaces(client)
        result: Workspace | None = None
        with _transfer_bar(as_json) as bar:
            for path in paths:
                task = bar.add_task(path.name, total=path.stat().st_size)

                def advance(n: int, task: Any = task) -> None:
                    bar.advance(task, n)

                target = result.id if result is not None else workspace_id
                result = workspaces.upload(
                    path,
                    workspace_id=target,
                    archive=archive,
                    ancillary=ancillary,
                    organisation_id=organisation_id,
                    progress=advance,
                )
        assert result is not None
        _show(result, as_json)
        if result.upload_status == "ERRORS":
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
        items = list(Workspaces(client).list(organisation_id=organisation_id, mine=mine))
    emit(
        items,
        as_json=as_json,
        title="Workspaces",
        columns=[
            "upload_id",
            "workspace_state",
            "lock_state",
            "upload_status",
            "file_count",
            "upload_total_size",
        ],
        labels={
            "upload_id": "id",
            "workspace_state": "state",
            "lock_state": "lock",
            "upload_status": "status",
            "file_count": "files",
            "upload_total_size": "bytes",
        },
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
        _workspace(workspace_id, api_url).files,
        as_json=as_json,
        title="Files",
        columns=["public_filepath", "size", "type", "modified_datetime"],
        labels={"public_filepath": "path", "modified_datetime": "modified"},
    )


@app.command()
def download(
    workspace_id: int = WorkspaceArg,
    file: str | None = typer.Option(None, "--file", help="Only this file (public path)."),
    output: Path = typer.Option(Path("."), "--output", "-o", help="File or folder to write."),
    api_url: str | None = ApiUrl,
) -> None:
    """Download the whole workspace as .tar.gz, or one file."""
    workspace = _workspace(workspace_id, api_url)
    with _transfer_bar(False) as bar:
        task = bar.add_task("download", total=None)
        saved = workspace.download(output, file=file, progress=lambda n: bar.advance(task, n))
    err.print(f"Saved {saved}", highlight=False)


@app.command()
def log(workspace_id: int = WorkspaceArg, api_url: str | None = ApiUrl) -> None:
    """Print the workspace's source log."""
    typer.echo(_workspace(workspace_id, api_url).log(), nl=False)


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
    path: str = typer.Argument(..., help="Public path of the file."),
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
