"""The `cairn` command: one sub-app per area, mounted here."""

from __future__ import annotations

from cairn.cli import accounts, admin, server, workspaces
from cairn.cli._common import CairnTyper

app = CairnTyper(
    help="cairn: upload, process, archive and trace research data.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
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
