"""`cairn serve` and `cairn check`: run the server and verify stored content locally."""

from __future__ import annotations

import typer
from rich.console import Console

from cairn.cli._common import JsonOption, counting_progress, emit, local_session

out = Console(stderr=True)


def serve(
    host: str | None = typer.Option(None, "--host", help="Interface (default from settings)."),
    port: int | None = typer.Option(None, "--port", help="Port (default from settings)."),
) -> None:
    """Migrate the database, then serve the API (Swagger UI at /docs)."""
    from cairn.api import create_app
    from cairn.config import get_settings
    from cairn.serving import serve_app

    settings = get_settings()
    with local_session():
        pass
    app = create_app(settings)
    out.print(
        f"cairn serving data in {settings.data_dir} on "
        f"http://{host or settings.host}:{port or settings.port} (docs at /docs)",
        highlight=False,
    )
    serve_app(app, settings, host=host or settings.host, port=port or settings.port)


def check(as_json: bool = JsonOption) -> None:
    """Re-hash every blob (fixity) and report corrupt, missing and unreferenced blobs."""
    from cairn.blobs import open_blob_store
    from cairn.blobs.check import check_blobs
    from cairn.config import get_settings
    from cairn.db import referenced_blobs

    store = open_blob_store(get_settings().blob_url)
    with local_session() as session:
        referenced = referenced_blobs(session)
    with counting_progress("checking blobs", quiet=as_json) as advance:
        report = check_blobs(store, referenced, progress=advance)
    data = {
        "ok": report.ok,
        "checked": report.checked,
        "bytes_checked": report.bytes_checked,
        "corrupt": report.corrupt,
        "missing": report.missing,
        "unreferenced": report.unreferenced,
    }
    if as_json:
        emit(data, as_json=True)
    else:
        out.print(f"Checked {report.checked} blobs ({report.bytes_checked} bytes).")
        for label in ("corrupt", "missing", "unreferenced"):
            for sha in data[label]:  # type: ignore[attr-defined]
                out.print(f"  {label}: {sha}", highlight=False)
        out.print("[green]All blobs intact.[/green]" if report.ok else "[red]Problems found.[/red]")
    if not report.ok:
        raise typer.Exit(1)
