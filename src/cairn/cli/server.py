"""`cairn serve` and `cairn check`: run the server and verify stored content locally."""

from __future__ import annotations

import typer
from rich.console import Console

from cairn.cli._common import JsonOption, counting_progress, emit, local_blob_store, local_session

out = Console(stderr=True)


def serve(
    host: str | None = typer.Option(None, "--host", help="Interface (default from settings)."),
    port: int | None = typer.Option(None, "--port", help="Port (default from settings)."),
) -> None:
    """Migrate the database, then serve the API (Swagger UI at /docs)."""
    from cairn.api import create_app
    from cairn.config import get_settings
    from cairn.serving import serve_app
    from cairn.tempfiles import remove_orphans

    settings = get_settings()
    # --host/--port win over the settings, and links (Settings.base_url) must say so too.
    chosen = {"host": host, "port": port}
    settings = settings.model_copy(update={k: v for k, v in chosen.items() if v is not None})
    with local_session():
        pass
    removed = remove_orphans(settings.work_dir)
    if removed:
        out.print(
            f"Removed {len(removed)} scratch leftovers of stopped cairn processes from "
            f"{settings.work_dir}.",
            highlight=False,
        )
    app = create_app(settings)
    if settings.executor == "dask":  # an unreachable scheduler stops the start, saying so
        from cairn.processing._runtime import Runtime

        Runtime.for_app(app.state)
    app.state.background_workers = True  # areas' workers (archive enhancement) run in serve
    out.print(
        f"cairn serving data in {settings.data_dir} on "
        f"http://{settings.host}:{settings.port} (docs at /docs)",
        highlight=False,
    )
    serve_app(app, settings)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def check(as_json: bool = JsonOption) -> None:
    """Re-hash every blob (fixity); report corrupt, missing, unreferenced blobs and leftovers.

    Leftovers are scratch files of interrupted uploads; `cairn admin gc` removes them.
    """
    from cairn.blobs.check import check_blobs
    from cairn.config import get_settings
    from cairn.db import referenced_blobs
    from cairn.tempfiles import find_leftovers

    settings = get_settings()
    store = local_blob_store(settings)
    with local_session() as session:
        referenced = referenced_blobs(session)
    with counting_progress("checking blobs", quiet=as_json) as advance:
        report = check_blobs(store, referenced, progress=advance)
    leftovers = find_leftovers(settings.work_dir)
    data = {
        "ok": report.ok,
        "checked": report.checked,
        "bytes_checked": report.bytes_checked,
        "corrupt": report.corrupt,
        "missing": report.missing,
        "unreferenced": report.unreferenced,
        "leftovers": [
            {
                "name": item.name,
                "bytes": item.bytes,
                "age_seconds": round(item.age_seconds),
                "owner_pid": item.owner_pid,
            }
            for item in leftovers
        ],
        "leftover_bytes": sum(item.bytes for item in leftovers),
    }
    if as_json:
        emit(data, as_json=True)
    else:
        out.print(f"Checked {report.checked} blobs ({report.bytes_checked} bytes).")
        for label in ("corrupt", "missing", "unreferenced"):
            for sha in data[label]:  # type: ignore[attr-defined]
                out.print(f"  {label}: {sha}", highlight=False)
        if leftovers:
            out.print(
                f"{len(leftovers)} scratch leftovers in {settings.work_dir} "
                f"({data['leftover_bytes']} bytes; 'cairn admin gc' removes them):",
                highlight=False,
            )
            for item in leftovers:
                owner = f"process {item.owner_pid}, stopped" if item.owner_pid else "owner unknown"
                out.print(
                    f"  leftover: {item.name} ({item.bytes} bytes, "
                    f"{_age(item.age_seconds)} old, {owner})",
                    highlight=False,
                )
        out.print("[green]All blobs intact.[/green]" if report.ok else "[red]Problems found.[/red]")
    if not report.ok:
        raise typer.Exit(1)
