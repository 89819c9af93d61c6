"""The `cairn` command: one sub-app per area, mounted here.

An area's module is imported only when one of its commands runs (or shows its own help):
importing them all made every start pay for SQLAlchemy, argon2 and httpx, about a second
before `cairn --help` printed anything. The one-line help that `cairn --help` lists is kept
here instead; a test checks it matches each command's own.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import typer
from typer.core import TyperCommand, TyperGroup

from cairn.cli._common import CairnTyper

__all__ = ["COMMANDS", "app", "load_command", "main"]


class LazyCommand(NamedTuple):
    module: str
    attribute: str
    help: str


# In the order `cairn --help` lists them. ``attribute`` names a function (a command) or a
# ``typer.Typer`` (a group of commands).
COMMANDS: dict[str, LazyCommand] = {
    "serve": LazyCommand(
        "cairn.cli.server",
        "serve",
        "Migrate the database, then serve the API (Swagger UI at /docs).",
    ),
    "check": LazyCommand(
        "cairn.cli.server",
        "check",
        "Re-hash every blob (fixity); report corrupt, missing, unreferenced blobs and leftovers.",
    ),
    "login": LazyCommand(
        "cairn.cli.accounts",
        "login",
        "Log in and keep the token (valid one day) in your config folder, readable only by you.",
    ),
    "logout": LazyCommand(
        "cairn.cli.accounts", "logout", "Revoke the saved token on the server and forget it."
    ),
    "whoami": LazyCommand("cairn.cli.accounts", "whoami", "Show the logged-in user."),
    "admin": LazyCommand(
        "cairn.cli.admin",
        "app",
        "Administer the local installation (reads CAIRN_DATA_DIR / CAIRN_DATABASE_URL).",
    ),
    "orgs": LazyCommand(
        "cairn.cli.accounts", "orgs", "Your organisations, their members and their credits."
    ),
    "archive": LazyCommand(
        "cairn.cli.archive",
        "app",
        "Signed archive: put, seal, search, show, status, signatures, export, verify, "
        "delete, storages, statuses, log, worker, fixity.",
    ),
    "workspace": LazyCommand(
        "cairn.cli.workspaces",
        "app",
        "Upload workspaces: upload, check, download, lock, release and delete.",
    ),
    "process": LazyCommand(
        "cairn.cli.process",
        "app",
        "Processing: list, display, define, start and download processes.",
    ),
    "worker": LazyCommand(
        "cairn.cli.worker", "worker", "Start a Dask worker that runs cairn's processing components."
    ),
    "record": LazyCommand(
        "cairn.cli.runs",
        "recorder",
        "Run a script or program and record what it read and wrote (no server needed).",
    ),
    "runs": LazyCommand(
        "cairn.cli.runs",
        "app",
        "Recorded runs: list, view, trace, check out, export and delete them.",
    ),
    "yw": LazyCommand(
        "cairn.cli.yw",
        "app",
        "YesWorkflow: model, facts, graphs, queries and recon from script comments.",
    ),
    "xml": LazyCommand(
        "cairn.cli.xml",
        "app",
        "XML database: load, query, list, get and delete documents (XQuery 3.1).",
    ),
}


def load_command(name: str) -> Any:
    """Import command ``name``'s module and build its click command (or group)."""
    entry = COMMANDS[name]
    target = getattr(importlib.import_module(entry.module), entry.attribute)
    if isinstance(target, typer.Typer):
        return typer.main.get_group(target)
    single = CairnTyper(add_completion=False)
    single.command(name)(target)
    return typer.main.get_command(single)


class _Unloaded(TyperCommand):
    """Stands in for a command of :data:`COMMANDS` whose module is not imported yet."""


class LazyGroup(TyperGroup):
    """Lists :data:`COMMANDS` from their help text; imports one only to run it or show its help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, entry in COMMANDS.items():
            self.commands.setdefault(name, _Unloaded(name, help=entry.help))

    def _load(self, name: str) -> None:
        if isinstance(self.commands.get(name), _Unloaded):
            self.commands[name] = load_command(name)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if ctx.resilient_parsing:  # shell completion goes on into the command's options
            self._load(cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args:
            self._load(args[0])
        return super().resolve_command(ctx, args)


app = CairnTyper(
    cls=LazyGroup,
    help="cairn: upload, process, archive and trace research data.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        from cairn import __version__

        typer.echo(f"cairn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """cairn: upload, process, archive and trace research data."""


def main() -> None:
    app()


if __name__ == "__main__":
    main()
