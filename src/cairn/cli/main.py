"""The `cairn` command: one sub-app per area, mounted here."""

from __future__ import annotations

import typer

from cairn.cli import accounts, admin, server, workspaces
from cairn.cli._common import CairnTyper

app = CairnTyper(
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


app.command()(server.serve)
app.command()(server.check)
app.command()(accounts.login)
app.command()(accounts.logout)
app.command()(accounts.whoami)
app.add_typer(admin.app, name="admin")
app.add_typer(accounts.orgs, name="orgs")
app.add_typer(workspaces.app, name="workspace")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
