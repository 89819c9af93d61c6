"""`cairn admin`: work directly on the configured database (same data as a running server)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from cairn.cli._common import (
    CairnTyper,
    JsonOption,
    counting_progress,
    emit,
    local_blob_store,
    local_database,
    local_session,
)
from cairn.errors import Conflict
from cairn.tempfiles import remove_stale

if TYPE_CHECKING:
    pass

app = CairnTyper(
    help="Administer the local installation (reads CAIRN_DATA_DIR / CAIRN_DATABASE_URL)."
)
out = Console()


@app.command()
def migrate() -> None:
    """Upgrade the database schema to the newest version (safe to repeat)."""
    with local_session():
        pass
    out.print("Database is up to date.")


@app.command("create-org")
def create_org(
    name: str = typer.Option(..., "--name", help="Organisation name."),
    as_json: bool = JsonOption,
) -> None:
    """Create an organisation."""
    from cairn.accounts import service as accounts

    with local_session() as session:
        org = accounts.create_organisation(session, name=name)
        data = {"id": org.id, "name": org.name}
    emit(data, as_json=as_json, title="Organisation created")


@app.command("create-storage")
def create_storage(
    org: str = typer.Option(..., "--org", help="Organisation name."),
    name: str = typer.Option(..., "--name", help="Storage name."),
    as_json: bool = JsonOption,
) -> None:
    """Create an archive storage; prints its integer id (the archive's StorageId)."""
    from cairn.accounts import service as accounts
    from cairn.archive import service as archive

    with local_session() as session:
        organisation = accounts.find_organisation_by_name(session, org)
        storage = archive.create_storage(session, organisation=organisation, name=name)
        data = {"id": storage.id, "name": storage.name, "organisation": organisation.name}
    if as_json:
        emit(data, as_json=True)
    else:
        typer.echo(data["id"])


@app.command("create-source-system")
def create_source_system(
    org: str = typer.Option(..., "--org", help="Organisation name."),
    name: str = typer.Option(..., "--name", help="Source system name."),
    as_json: bool = JsonOption,
) -> None:
    """Create an archive source system; prints its integer id and its API key (X-Api-Key),
    shown only now."""
    from cairn.accounts import service as accounts
    from cairn.archive import service as archive

    with local_session() as session:
        organisation = accounts.find_organisation_by_name(session, org)
        system, key = archive.create_source_system(session, organisation=organisation, name=name)
        data = {"id": system.id, "name": system.name, "api_key": key}
    if as_json:
        emit(data, as_json=True)
    else:
        typer.echo(f"{data['id']} {key}")


@app.command("create-user")
def create_user(
    email: str = typer.Option(..., "--email"),
    password: str = typer.Option(..., "--password", help="Must meet the password policy."),
    org: str | None = typer.Option(None, "--org", help="Also add the user to this organisation."),
    privilege: str = typer.Option("manage", "--privilege", help="view, execute or manage."),
    user_id: str | None = typer.Option(None, "--user-id", help="Identifier to log in with."),
    given_name: str | None = typer.Option(None, "--given-name"),
    family_name: str | None = typer.Option(None, "--family-name"),
    as_json: bool = JsonOption,
) -> None:
    """Create a user, optionally as a member of an organisation."""
    from cairn.accounts import service as accounts

    with local_session() as session:
        user = accounts.create_user(
            session,
            email=email,
            password=password,
            user_id=user_id,
            given_name=given_name,
            family_name=family_name,
        )
        if org is not None:
            organisation = accounts.find_organisation_by_name(session, org)
            accounts.add_member(session, user=user, organisation=organisation, privilege=privilege)
        data = {"id": user.id, "email": user.email, "organisation": org}
    emit(data, as_json=as_json, title="User created")


@app.command("add-member")
def add_member(
    email: str = typer.Option(..., "--email"),
    org: str = typer.Option(..., "--org", help="Organisation name."),
    privilege: str = typer.Option(..., "--privilege", help="view, execute or manage."),
    as_json: bool = JsonOption,
) -> None:
    """Add a user to an organisation, or change their privilege there."""
    from cairn.accounts import service as accounts

    with local_session() as session:
        user = accounts.find_user(session, email=email)
        organisation = accounts.find_organisation_by_name(session, org)
        membership = accounts.add_member(
            session, user=user, organisation=organisation, privilege=privilege
        )
        data = {"email": user.email, "organisation": org, "privilege": membership.privilege}
    emit(data, as_json=as_json, title="Membership")


@app.command("grant-credits")
def grant_credits(
    org: str = typer.Option(..., "--org", help="Organisation name."),
    amount: int = typer.Option(..., "--amount", help="Credits to add (negative to charge)."),
    reason: str = typer.Option("granted by administrator", "--reason"),
    as_json: bool = JsonOption,
) -> None:
    """Add credits to an organisation's ledger."""
    from cairn.accounts import service as accounts

    with local_session() as session:
        organisation = accounts.find_organisation_by_name(session, org)
        accounts.grant_credits(session, organisation=organisation, amount=amount, reason=reason)
        data = {
            "organisation": org,
            "granted": amount,
            "balance": accounts.credit_balance(session, organisation.id),
        }
    emit(data, as_json=as_json, title="Credits")


@app.command("add-dem")
def add_dem(
    path: Path = typer.Argument(..., help="A GeoTIFF or COG of heights in metres, with a CRS."),
    name: str | None = typer.Option(None, "--name", help="Its name (default: the file's stem)."),
    as_json: bool = JsonOption,
) -> None:
    """Register a local terrain model for the Elevation service, which then clips the
    registered source covering a region (a region outside every source fails saying so;
    with none registered, Elevation samples its SYNTHETIC terrain)."""
    from cairn.processing import service

    with local_session() as session:
        source = service.add_dem_source(session, path=path, name=name)
        data = {
            "name": source.name,
            "path": source.path,
            "crs": source.crs,
            "bounds": [source.west, source.south, source.east, source.north],
        }
    emit(data, as_json=as_json, title="DEM source")


@app.command("list-dems")
def list_dems(as_json: bool = JsonOption) -> None:
    """The terrain models registered for the Elevation service, oldest first."""
    from cairn.processing import service

    with local_session() as session:
        found = service.dem_sources(session)
    emit(found, as_json=as_json, title="DEM sources")


@app.command("seed-demo")
def seed_demo(as_json: bool = JsonOption) -> None:
    """Create the demo organisation and user if missing (idempotent) and print how to log in."""
    from cairn.config import get_settings
    from cairn.demo import DEMO_EMAIL, DEMO_ORG, DEMO_PASSWORD
    from cairn.demo import seed_demo as seed

    settings = get_settings()
    demo_dir = settings.data_dir / "demo"
    with local_database() as uow:
        created = seed(
            uow,
            local_blob_store(settings),
            work_dir=settings.work_dir,
            demo_dir=demo_dir,
            base_url=settings.base_url,
        )
    data = {
        "email": DEMO_EMAIL,
        "password": DEMO_PASSWORD,
        "organisation": DEMO_ORG,
        "created": created,
        "archive_guide": str(demo_dir / "archive.txt"),
    }
    if as_json:
        emit(data, as_json=True)
        return
    verb = "Created" if created else "Using"
    out.print(
        f"[bold]{verb} demo account[/bold]: {DEMO_EMAIL} / {DEMO_PASSWORD} "
        f"(organisation '{DEMO_ORG}'); to try the signed archive, read "
        f"{demo_dir / 'archive.txt'}",
        highlight=False,
    )


@app.command("gc")
def gc(
    grace_minutes: int = typer.Option(
        60,
        "--grace-minutes",
        min=0,
        help="Keep unreferenced blobs younger than this. An upload stores its blobs a moment "
        "before it commits the rows that reference them, so a young orphan may be part of an "
        "upload in flight; make this longer than your slowest upload.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would go; delete nothing."),
    force: bool = typer.Option(
        False, "--force", help="Collect even when the database references no blob at all."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Delete blobs no row references any more, e.g. left by deleted workspaces or files, and
    expired resumable uploads (CAIRN_RESUMABLE_UPLOAD_EXPIRY after their last bytes).

    Deleting rows keeps their blobs, which other rows may share (dedupe); this removes orphans.
    Pack files that held deleted small blobs are then rewritten without them (repack).
    """
    from cairn.blobs import collect_garbage
    from cairn.config import get_settings
    from cairn.db import referenced_blobs
    from cairn.workspaces.resumable import partial_folder, purge_expired_uploads

    settings = get_settings()
    store = local_blob_store(settings)
    with local_session() as session:
        referenced = referenced_blobs(session)
    if not referenced and not dry_run and not force and next(store.iter_hashes(), None):
        # Pointed at the wrong (empty) database, gc would delete every blob.
        raise Conflict(
            "The database references no blob but the store holds some: check "
            "CAIRN_DATABASE_URL and CAIRN_BLOB_URL, or pass --force to delete them all."
        )
    with counting_progress("collecting garbage", quiet=as_json) as advance:
        report = collect_garbage(
            store,
            referenced,
            grace=timedelta(minutes=grace_minutes),
            dry_run=dry_run,
            progress=advance,
        )
    # Leftovers of interrupted puts and uploads (temporary files, staging folders).
    grace = timedelta(minutes=grace_minutes)
    temp = store.purge_temp(older_than=grace, dry_run=dry_run)
    temp += remove_stale(settings.work_dir, older_than=grace, dry_run=dry_run)
    with local_session() as session:
        uploads = purge_expired_uploads(
            session,
            partial_folder(store, settings.data_dir),
            older_than=grace,
            dry_run=dry_run,
        )
    if as_json:
        data = {
            "dry_run": report.dry_run,
            "grace_minutes": grace_minutes,
            "deleted": report.deleted,
            "kept_recent": report.kept_recent,
            "bytes_freed": report.bytes_freed,
            "bytes_repacked": report.bytes_repacked,
            "temporary_removed": temp,
            "expired_uploads_removed": uploads,
        }
        emit(data, as_json=True)
        return
    summary = {
        "blobs to delete" if dry_run else "blobs deleted": len(report.deleted),
        "bytes to free" if dry_run else "bytes freed": report.bytes_freed,
        "blobs kept (younger than grace)": len(report.kept_recent),
        "pack bytes dropped (repack)": report.bytes_repacked,
        "stale temporary files": len(temp),
        "expired resumable uploads": len(uploads),
    }
    emit(summary, as_json=False, title="Garbage collection" + (" (dry run)" if dry_run else ""))
