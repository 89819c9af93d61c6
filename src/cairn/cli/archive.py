"""`cairn archive`: put signed documents into the archive, find and read containers, and run
the enhancement worker outside `cairn serve`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from cairn.cli._common import CairnTyper, JsonOption, emit, local_blob_store, remote_client

if TYPE_CHECKING:
    from cairn.archive._worker import EnhanceContext
    from cairn.db import UnitOfWork

app = CairnTyper(
    help="Signed archive: put, seal, search, show, status, signatures, export, verify, "
    "delete, storages, statuses, log, worker, fixity."
)
err = Console(stderr=True)
ApiUrl = typer.Option(None, "--api-url", envvar="CAIRN_API_URL", help="Server URL.")
SUMMARY = ["id", "name", "status", "status_name", "status_reason", "storage_id", "created_at"]


@app.command()
def put(
    document: Path = typer.Argument(..., exists=True, dir_okay=False, help="The signed file."),
    signatures: list[Path] = typer.Option(
        [], "--sign", "-s", exists=True, dir_okay=False, help="A detached signature (repeat)."
    ),
    storage_id: int = typer.Option(..., "--storage", help="StorageId (cairn archive storages)."),
    name: str = typer.Option(..., "--name", help="Container name."),
    save_type: str = typer.Option("Permanent", "--save-type", help="Temporary or Permanent."),
    archive_date: str | None = typer.Option(None, "--until", help="ArchiveDate (Temporary)."),
    keep_document: bool = typer.Option(
        False, "--keep-document", help="UseArchiveCa: the archive keeps the document too."
    ),
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """Archive a document with its detached signatures (none: it is an attached signature)."""
    progress = err.status(f"uploading {document.name}") if not as_json else nullcontext()
    with remote_client(api_url) as client, progress:
        container = client.archive.put(
            document,
            signatures,
            storage_id=storage_id,
            name=name,
            save_type=save_type,
            archive_date=archive_date,
            use_archive_ca=keep_document,
        )
    emit(container.to_dict(), as_json=as_json, title="Container")


@app.command()
def seal(
    workspace_id: int | None = typer.Option(None, "--workspace", help="Workspace id to seal."),
    run_id: str | None = typer.Option(
        None, "--run", help="Published run to seal: its UUID or number, or a publication id."
    ),
    storage_id: int | None = typer.Option(
        None, "--storage", help="StorageId (default: the organisation's first storage)."
    ),
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """Seal a workspace or a published run: its package archived as a new container signed
    by cairn's seal key and recorded in the provenance store (each seal is a new container)."""
    if (workspace_id is None) == (run_id is None):
        raise typer.BadParameter("Give --workspace or --run (one of them).")
    with remote_client(api_url) as client:
        container = client.archive.seal(
            workspace_id, published_run_id=run_id, storage_id=storage_id
        )
    emit(container.to_dict(), as_json=as_json, title="Container")


@app.command()
def search(
    name: str | None = typer.Option(None, "--name", help="Name substring."),
    status: int | None = typer.Option(None, "--status", help="Status number."),
    storage_id: int | None = typer.Option(None, "--storage", help="StorageId."),
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """Containers of your organisations, newest first."""
    with remote_client(api_url) as client:
        found = [
            c.to_dict()
            for c in client.archive.search(name=name, status=status, storage_id=storage_id)
        ]
    emit(found, as_json=as_json, columns=SUMMARY, title="Containers")


@app.command()
def show(
    container_id: str = typer.Argument(..., help="Container uuid."),
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """A container with its signatures' levels and verdicts."""
    with remote_client(api_url) as client:
        emit(client.archive.get(container_id).to_dict(), as_json=as_json, title="Container")


@app.command()
def status(
    container_id: str = typer.Argument(..., help="Container uuid."),
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """The container's status number and name."""
    with remote_client(api_url) as client:
        container = client.archive.get(container_id)
    data = {"status": container.status, "name": container.status_name}
    emit(data, as_json=as_json, title="Status")


@app.command()
def signatures(
    container_id: str = typer.Argument(..., help="Container uuid."),
    output: Path = typer.Option(Path("signatures.zip"), "--output", "-o", help="Zip to write."),
    api_url: str | None = ApiUrl,
) -> None:
    """Download the signatures as a zip (CAdES-A once the status is 4)."""
    with remote_client(api_url) as client:
        client.archive.get(container_id).download_signatures(output)
    err.print(f"wrote {output}", highlight=False)


@app.command("export")
def export_(
    container_id: str = typer.Argument(..., help="Container uuid."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Zip to write (default: container-<id>.zip)."
    ),
    api_url: str | None = ApiUrl,
) -> None:
    """Download the container as a BagIt bag (zip): document, signatures, validation reports,
    event history, SHA-256 and SHA-512 manifests. Check it with `cairn archive verify`."""
    target = output or Path(f"container-{container_id}.zip")
    with remote_client(api_url) as client:
        client.archive.get(container_id).export(target)
    err.print(f"wrote {target}", highlight=False)


@app.command()
def verify(
    export: Path = typer.Argument(..., exists=True, dir_okay=False, help="An exported zip."),
    trust_roots: Path | None = typer.Option(
        None,
        "--trust-roots",
        exists=True,
        file_okay=False,
        help="Folder of CA certificates the signers must chain to (default: integrity only).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Check an export offline: the bag's structure and checksums, the document against the
    container's hash, and each signature (and archive timestamp) over it. Exits 1 and names
    what failed when anything does."""
    from cairn.archive.export import verify_export

    checks = verify_export(export, trust_roots=trust_roots)
    rows = [{"check": c.what, "ok": c.ok, "problem": c.problem or ""} for c in checks]
    emit(rows, as_json=as_json, columns=["check", "ok", "problem"], title="Export checks")
    failed = [c for c in checks if not c.ok]
    if failed:
        err.print(f"{len(failed)} of {len(checks)} checks failed", highlight=False)
        raise typer.Exit(1)
    err.print(f"all {len(checks)} checks passed", highlight=False)


@app.command()
def storages(api_url: str | None = ApiUrl, as_json: bool = JsonOption) -> None:
    """The storages you may put containers in."""
    with remote_client(api_url) as client:
        found = [s.model_dump() for s in client.archive.storages()]
    emit(found, as_json=as_json, columns=["id", "name"], title="Storages")


@app.command()
def statuses(api_url: str | None = ApiUrl, as_json: bool = JsonOption) -> None:
    """Every container status: number, name and meaning."""
    with remote_client(api_url) as client:
        found = client.archive.statuses()
    emit(found, as_json=as_json, columns=["id", "name", "description"], title="Statuses")


@app.command()
def log(
    organisation_id: str = typer.Argument(..., help="Organisation id."),
    leaf: int | None = typer.Option(
        None, "--leaf", min=0, help="An event's log_index: print its inclusion proof."
    ),
    since: int | None = typer.Option(
        None, "--since", min=1, help="An older tree size: print the consistency proof."
    ),
    size: int | None = typer.Option(None, "--size", min=1, help="Up to this tree size."),
    api_url: str | None = ApiUrl,
) -> None:
    """The organisation's transparency log: its signed tree head, or a proof (JSON)."""
    if leaf is not None and since is not None:
        raise typer.BadParameter("Ask for --leaf or --since, not both.")
    with remote_client(api_url) as client:
        if leaf is not None:
            found = client.archive.inclusion_proof(organisation_id, leaf, size)
        elif since is not None:
            found = client.archive.consistency_proof(organisation_id, since, size)
        else:
            found = client.archive.tree_head(organisation_id)
    emit(found, as_json=True)


@contextmanager
def _local() -> Iterator[tuple[UnitOfWork, EnhanceContext]]:
    """The local database (migrated), blob store, archive settings and plugins, as the
    worker uses them; a bad plugin-config.json stops here, named."""
    from cairn.archive._worker import EnhanceContext
    from cairn.archive.plugins import load_plugins
    from cairn.archive.settings import ArchiveSettings
    from cairn.config import get_settings
    from cairn.db import UnitOfWork, make_engine, make_sessionmaker, migrate

    settings = get_settings()
    engine = make_engine(settings)
    try:
        migrate(engine)
        archive = ArchiveSettings()
        load_plugins(archive.archive_plugins)
        context = EnhanceContext(local_blob_store(settings), archive, settings.data_dir)
        yield UnitOfWork(make_sessionmaker(engine)), context
    finally:
        engine.dispose()


@app.command()
def worker(
    once: bool = typer.Option(False, "--once", help="Enhance what is waiting, then exit."),
    interval: float = typer.Option(2.0, "--interval", help="Seconds between polls."),
) -> None:
    """Run the enhancement worker on the local database (besides or instead of the one inside
    `cairn serve`; set CAIRN_ARCHIVE_WORKER=false there to run only this one). It also makes
    the plugin calls that are due (saves to storage plugins and post-processing,
    CAIRN_ARCHIVE_PLUGINS), ends the storage of Temporary containers past their date, and
    re-hashes containers due a fixity check."""
    from cairn.archive._worker import Worker

    done = 0
    with _local() as (uow, context):
        loop = Worker(uow, context, interval=interval)
        try:
            while True:
                if loop.run_once():
                    done += 1
                    continue
                if once:
                    break
                time.sleep(interval)
        except KeyboardInterrupt:
            pass
    err.print(f"enhanced {done} container(s)", highlight=False)


@app.command()
def fixity(
    container_id: str | None = typer.Argument(None, help="One container (default: all due)."),
    every_days: float | None = typer.Option(
        None,
        "--every-days",
        help="Check containers not checked within this many days "
        "(default CAIRN_ARCHIVE_FIXITY_DAYS; 0 checks every container now).",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Re-hash stored documents and signatures on the local database against the hashes
    recorded on upload; each outcome is an event, a mismatch puts the container in status 7.
    Exits 1 when a check failed."""
    from cairn.archive.fixity import check_container, check_due

    with _local() as (uow, context):
        plugins, blobs = context.plugins, context.blobs
        if container_id is not None:
            one = check_container(uow, blobs, plugins, container_id)
            outcomes = [] if one is None else [one]
        else:
            days = context.settings.archive_fixity_days if every_days is None else every_days
            outcomes = []
            while batch := check_due(uow, blobs, plugins, every=timedelta(days=days), limit=100):
                outcomes += batch
                if days == 0:  # "now" moves on: every container is due again at once
                    break
    rows = [
        {"container": o.container_id, "ok": o.ok, "problems": "; ".join(o.problems)}
        for o in outcomes
    ]
    emit(rows, as_json=as_json, columns=["container", "ok", "problems"], title="Fixity")
    if any(not o.ok for o in outcomes):
        raise typer.Exit(1)


@app.command()
def delete(
    container_id: str = typer.Argument(..., help="Container uuid."),
    api_url: str | None = ApiUrl,
) -> None:
    """Delete a container: status 8, the document removed, a tombstone kept."""
    with remote_client(api_url) as client:
        client.archive.get(container_id).delete()
    err.print(f"deleted {container_id}", highlight=False)
