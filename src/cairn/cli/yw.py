"""`cairn yw …`: YesWorkflow models, facts, graphs, queries and recon from annotated scripts.

Everything here works on local files: no server and no database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from cairn.cli._common import CairnTyper, JsonOption, emit

app = CairnTyper(help="YesWorkflow: model, facts, graphs, queries and recon from script comments.")
err = Console(stderr=True)

SourcesArg = typer.Argument(..., help="Annotated source files (one workflow may span several).")
LanguageOpt = typer.Option(
    None,
    "--language",
    "-l",
    help="Comment syntax: python, r, shell, matlab, sql or c (default: by file extension).",
)


def _model(sources: list[Path], language: str | None) -> Any:
    from cairn.provenance.yw import load_model

    return load_model(sources, language=language)


@app.command()
def model(
    sources: list[Path] = SourcesArg,
    language: str | None = LanguageOpt,
    as_json: bool = JsonOption,
) -> None:
    """Show the workflow model: programs, their ports, data and channels."""
    built = _model(sources, language)
    data = built.to_dict()
    if as_json:
        emit(data, as_json=True)
        return
    ports = {p["id"]: p for p in data["ports"]}

    def names(ids: list[int]) -> str:
        return ", ".join(
            ports[i]["name"] + (f" as {ports[i]['alias']}" if ports[i]["alias"] else "")
            for i in ids
        )

    rows = [
        {
            "program": p["qualified_name"],
            "kind": p["kind"],
            "in": names(p["in_ports"]),
            "out": names(p["out_ports"]),
        }
        for p in data["programs"]
    ]
    emit(rows, as_json=False, title="YesWorkflow model")


@app.command()
def facts(
    sources: list[Path] = SourcesArg,
    out: Path = typer.Option(..., "--output", "-o", help="Folder for the .P files (created)."),
    language: str | None = LanguageOpt,
    as_json: bool = JsonOption,
) -> None:
    """Write YesWorkflow 0.2 Prolog facts: yw_extract_facts.P and yw_model_facts.P."""
    from cairn.provenance.yw import write_facts

    written = write_facts(_model(sources, language), out)
    emit({"written": [str(p) for p in written]}, as_json=as_json)
