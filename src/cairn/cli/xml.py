"""`cairn xml …`: load, query, list, get and delete documents of an organisation's XML database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cairn.cli._common import CairnTyper, JsonOption, emit, remote_client

app = CairnTyper(help="XML database: load, query, list, get and delete documents (XQuery 3.1).")

ApiUrl = typer.Option(None, "--api-url", envvar="CAIRN_API_URL", help="Server URL.")
Database = typer.Option(
    ...,
    "--db",
    envvar="CAIRN_XML_DATABASE",
    help="The database: one of your organisations, by id or name.",
)
LIST_FIELDS = ["name", "collection", "size", "version", "node_count"]


def _connection(database: str, api_url: str | None) -> Any:
    from cairn.client.xmldb import Connection

    return Connection(remote_client(api_url), database, owns_client=True)


@app.command()
def load(
    path: str = typer.Argument(..., help="XML file (with --workspace: a file of that workspace)."),
    name: str | None = typer.Option(None, "--name", help="Document name (default: file stem)."),
    collection: str | None = typer.Option(None, "--collection", help="Put it in a collection."),
    replace: bool = typer.Option(False, "--replace", help="Replace a document of that name."),
    workspace: int | None = typer.Option(
        None, "--workspace", help="Load PATH from this workspace, on the server."
    ),
    database: str = Database,
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """Load an XML file (or a workspace's file) as a document, its name unique in the database."""
    document = name or Path(path).stem
    if workspace is None and not Path(path).is_file():
        raise typer.BadParameter(f"{path!r} is not a file.", param_hint="PATH")
    if workspace is not None and replace:
        raise typer.BadParameter("--replace loads a local file; drop --workspace.")
    with _connection(database, api_url) as con:
        if workspace is not None:
            doc = con.load_workspace_file(document, workspace, path, collection)
        else:
            call = con.replace_document if replace else con.load_document
            doc = call(document, Path(path), collection)
    emit(doc, as_json=as_json, columns=["id", *LIST_FIELDS], title=f"Document {doc['name']}")


@app.command()
def query(
    xquery: str = typer.Argument(..., help="An XQuery; '-' reads it from stdin."),
    variable: list[str] = typer.Option(
        [], "--var", "-v", help="An external variable, name=value (a string)."
    ),
    database: str = Database,
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """Run an XQuery and print its result (nodes as XML, atoms as text)."""
    import sys

    text = sys.stdin.read() if xquery == "-" else xquery
    variables: dict[str, str] = {}
    for pair in variable:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"--var takes name=value, not {pair!r}")
        variables[key] = value
    with _connection(database, api_url) as con:
        result = con.create_statement().execute_query_lite(text, **variables)
    if as_json:
        emit({"result": result}, as_json=True)
    else:
        typer.echo(result)


@app.command("list")
def list_documents(
    collection: str | None = typer.Option(None, "--collection", help="Only this collection."),
    database: str = Database,
    api_url: str | None = ApiUrl,
    as_json: bool = JsonOption,
) -> None:
    """List the database's documents."""
    with _connection(database, api_url) as con:
        docs = con.list_documents(collection)
    emit(docs, as_json=as_json, columns=LIST_FIELDS, title="Documents")


@app.command()
def get(
    name: str = typer.Argument(..., help="Document name."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file."),
    database: str = Database,
    api_url: str | None = ApiUrl,
) -> None:
    """Print a document's stored XML (or write it to a file)."""
    with _connection(database, api_url) as con:
        text = con.get_document(name)
    if output is not None:
        output.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)


@app.command()
def delete(
    name: str = typer.Argument(..., help="Document name."),
    database: str = Database,
    api_url: str | None = ApiUrl,
) -> None:
    """Delete a document."""
    with _connection(database, api_url) as con:
        con.delete_document(name)
    typer.echo(f"Deleted {name}.", err=True)
