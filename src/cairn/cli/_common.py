"""What every CLI module shares: the Typer subclass turning errors into exit codes
(``cairn.errors.OUTCOMES``), output helpers (``--json`` or rich), the client of the saved login,
and local database access for admin commands."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand

from cairn import errors

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy.orm import Session

    from cairn.blobs import BlobStore
    from cairn.client import Client
    from cairn.config import Settings
    from cairn.db import UnitOfWork

__all__ = [
    "CairnTyper",
    "JsonOption",
    "counting_progress",
    "emit",
    "local_blob_store",
    "local_database",
    "local_session",
    "remote_client",
]


@functools.cache
def console() -> Console:
    """rich's console on stderr, made on first use (importing rich takes ~20 ms, which
    `cairn record`'s start-up need not pay, issue #14)."""
    from rich.console import Console

    return Console(stderr=True)


class CairnCommand(TyperCommand):
    """Prints a ``CairnError`` as one clear line and exits with its code, no traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click Context
        try:
            return super().invoke(ctx)
        except errors.CairnError as exc:
            console().print(f"[red]Error:[/red] {exc.message}", highlight=False)
            if isinstance(exc.detail, list):
                for item in exc.detail:
                    console().print(f"  - {item}", highlight=False)
            raise typer.Exit(errors.outcome_for(exc).exit_code) from exc


class CairnTyper(typer.Typer):
    """``typer.Typer`` whose commands are ``CairnCommand``s and never show locals (tokens)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("pretty_exceptions_show_locals", False)
        kwargs.setdefault("no_args_is_help", True)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        kwargs.setdefault("cls", CairnCommand)
        return super().command(*args, **kwargs)


JsonOption = typer.Option(False, "--json", help="Print one JSON document on stdout.")


def emit(
    data: Any,
    *,
    as_json: bool,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    labels: dict[str, str] | None = None,
) -> None:
    """Print ``data`` as JSON on stdout, or as a rich table (lists) / key-value table (dicts);
    ``labels`` gives short column headings for a list's keys."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    out = Console()
    if isinstance(data, list):
        table = Table(title=title)
        keys = list(columns or (data[0].keys() if data else []))
        for key in keys:
            table.add_column((labels or {}).get(key, key))
        for row in data:
            table.add_row(*("" if row.get(k) is None else str(row.get(k)) for k in keys))
        out.print(table)
    elif isinstance(data, dict):
        table = Table(title=title, show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value")
        for key in columns or data.keys():
            value = data.get(key)
            table.add_row(key, "" if value is None else str(value))
        out.print(table)
    else:
        out.print(data)


@contextmanager
def counting_progress(label: str, *, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr; yields the ``progress(done, total)`` callback services take."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=console(),
        disable=quiet,
    ) as progress:
        task = progress.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance


# --- the saved login ------------------------------------------------------------------------------


def remote_client(api_url: str | None = None) -> Client:
    """A client with the saved token (``cairn login`` first)."""
    from cairn.client import DEFAULT_API_URL, Client
    from cairn.client.credentials import load_login

    saved = load_login()
    return Client(api_url or saved.api_url or DEFAULT_API_URL, token=saved.token)


# --- local database access (admin commands, serve, check) ----------------------------------------


def local_blob_store(settings: Settings) -> BlobStore:
    """The configured blob store, after loading the plugins ``CAIRN_PLUGINS`` names (the
    store's backend may come from one)."""
    from cairn.blobs import open_blob_store
    from cairn.plugins import load_plugins

    load_plugins(settings)
    return open_blob_store(settings.blob_url)


@contextmanager
def local_database(*, every_area: bool = True) -> Iterator[UnitOfWork]:
    """Transactions on the configured database (migrated first), for admin commands.

    Every area's tables are registered first, so any foreign key resolves; a caller that
    imports the models it uses itself (``cairn record``) passes ``every_area=False`` and saves
    their import (about 0.1 s)."""
    from cairn.config import get_settings
    from cairn.db import UnitOfWork, make_engine, make_sessionmaker, migrate

    if every_area:
        import cairn.db.models  # noqa: F401
    engine = make_engine(get_settings())
    try:
        migrate(engine)
        yield UnitOfWork(make_sessionmaker(engine))
    finally:
        engine.dispose()


@contextmanager
def local_session() -> Iterator[Session]:
    """One transaction on the configured database: committed on success, else rolled back."""
    with local_database() as uow, uow.transaction() as session:
        yield session
