"""What every CLI module shares: the Typer subclass mapping errors to exit codes, output
helpers (``--json`` or rich), saved credentials, and local database access for admin commands."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from platformdirs import user_config_dir
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy.orm import Session
from typer.core import TyperCommand

from cairn import errors
from cairn.client import DEFAULT_API_URL, Client

__all__ = [
    "CairnTyper",
    "JsonOption",
    "counting_progress",
    "credentials_path",
    "emit",
    "load_credentials",
    "local_session",
    "remote_client",
    "save_credentials",
]

console = Console(stderr=True)

EXIT_CODES: dict[type[errors.CairnError], int] = {
    errors.Invalid: 2,
    errors.Unauthorized: 3,
    errors.Forbidden: 3,
    errors.NotFound: 4,
    errors.Conflict: 5,
    errors.TooLarge: 6,
    errors.PaymentRequired: 7,
}


def exit_code_for(exc: errors.CairnError) -> int:
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


class CairnCommand(TyperCommand):
    """Prints a ``CairnError`` as one clear line and exits with its code, no traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click Context
        try:
            return super().invoke(ctx)
        except errors.CairnError as exc:
            console.print(f"[red]Error:[/red] {exc.message}", highlight=False)
            if isinstance(exc.detail, list):
                for item in exc.detail:
                    console.print(f"  - {item}", highlight=False)
            raise typer.Exit(exit_code_for(exc)) from exc


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
    with Progress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
    ) as progress:
        task = progress.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance


# --- saved credentials ---------------------------------------------------------------------------


def credentials_path() -> Path:
    return Path(user_config_dir("cairn")) / "credentials.json"


def save_credentials(api_url: str, token: str, expires_at: str, email: str) -> Path:
    """Keep the token where only this user can read it (0600)."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(
            {"api_url": api_url, "token": token, "expires_at": expires_at, "email": email}, handle
        )
    os.chmod(path, 0o600)
    return path


def load_credentials() -> dict[str, str] | None:
    try:
        data: dict[str, str] = json.loads(credentials_path().read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data


def remote_client(api_url: str | None = None) -> Client:
    """A client with the saved token; ``cairn login`` first."""
    saved = load_credentials()
    if saved is None:
        raise errors.Unauthorized("Not logged in: run 'cairn login' first.")
    return Client(api_url or saved.get("api_url") or DEFAULT_API_URL, token=saved["token"])


# --- local database access (admin commands, serve, check) ----------------------------------------


@contextmanager
def local_session() -> Iterator[Session]:
    """A committed-on-success session on the configured database, migrated first."""
    from cairn.config import get_settings
    from cairn.db import make_engine, make_sessionmaker, migrate, session_scope

    engine = make_engine(get_settings())
    try:
        migrate(engine)
        with session_scope(make_sessionmaker(engine)) as session:
            yield session
    finally:
        engine.dispose()
