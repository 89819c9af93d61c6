"""`cairn yw …`: YesWorkflow models, facts, graphs, queries and recon from annotated scripts.

Everything here works on local files: no server and no database.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from cairn.cli._common import CairnTyper, JsonOption, emit
from cairn.errors import Invalid

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
    if as_json:
        emit({"written": [str(p) for p in written]}, as_json=True)
    else:
        for path in written:
            err.print(f"wrote {path}", highlight=False)


ViewOpt = typer.Option("combined", "--view", help="process, data or combined.")
DepthOpt = typer.Option(1, "--depth", help="Nesting levels to open (1: the top workflow's steps).")
GraphOut = typer.Option(
    None, "--output", "-o", help="Write the graph: .svg, .png, .pdf (via Graphviz) or .dot."
)


def _draw(dot_text: str, out: Path | None) -> None:
    from cairn.provenance.yw.graph import render

    if out is None:
        typer.echo(dot_text, nl=False)
    else:
        err.print(f"wrote {render(dot_text, out)}", highlight=False)


@app.command()
def graph(
    sources: list[Path] = SourcesArg,
    view: str = ViewOpt,
    depth: int = DepthOpt,
    out: Path | None = GraphOut,
    language: str | None = LanguageOpt,
) -> None:
    """Draw the workflow (YesWorkflow's style); DOT on stdout without --output."""
    from cairn.provenance.yw.graph import to_dot
    from cairn.provenance.yw.view import build_view

    shown = build_view(_model(sources, language), depth)
    _draw(to_dot(shown, view), out)


query_app = CairnTyper(help="Prospective lineage: upstream, downstream, inputs, outputs, depends.")
app.add_typer(query_app, name="query")


def _answer(
    sources: list[Path],
    options: dict[str, Any],
    ask: Any,
) -> None:
    from cairn.provenance.yw.graph import to_dot
    from cairn.provenance.yw.view import build_view

    built = _model(sources, options["language"])
    shown = build_view(built, options["depth"])
    files = None
    if options["files"] is not None:
        from cairn.provenance.yw.recon import hybrid_resources, read_file_records, reconstruct

        matched = reconstruct(built, read_file_records(options["files"]), base=options["base"])
        files = hybrid_resources(matched, shown)
    lineage = ask(shown, files)
    if options["out"] is not None:
        title = f"{lineage.query} {lineage.subject}" if lineage.subject else lineage.query
        kind = "combined" if files else options["view"]
        _draw(to_dot(shown, kind, keep=lineage.keep, resources=files, title=title), options["out"])
    if options["as_json"]:
        emit(lineage.to_dict(), as_json=True)
        return
    rows = [{"kind": "data", "name": n} for n in lineage.data]
    rows += [{"kind": "step", "name": n} for n in lineage.steps]
    rows += [{"kind": "file", "name": f["path"]} for f in lineage.files]
    emit(rows, as_json=False, columns=["kind", "name"], title=lineage.query)


FilesOpt = typer.Option(
    None, "--files", "-f", help="A run's file list (YAML): answer with its files too (hybrid)."
)
BaseOpt = typer.Option(None, "--base", help="The run's folder (for --files).")


DataOpt = typer.Option(
    ..., "--data", "-d", help="The data item (name or wf\\[name]); with --files also a file path."
)


def _query(name: str, ask: Callable[..., Any], doc: str, *, about_data: bool) -> None:
    """Register ``cairn yw query NAME``: a lineage question about one data item
    (``about_data``: ``ask(view, data, files)``) or about the whole workflow (``ask(view, files)``,
    and the command has no ``--data``)."""

    def command(
        sources: list[Path] = SourcesArg,
        data: str = DataOpt,
        depth: int = DepthOpt,
        view: str = ViewOpt,
        out: Path | None = GraphOut,
        files: Path | None = FilesOpt,
        base: Path | None = BaseOpt,
        language: str | None = LanguageOpt,
        as_json: bool = JsonOption,
    ) -> None:
        options = {"language": language, "depth": depth, "view": view, "out": out}
        options |= {"as_json": as_json, "files": files, "base": base}
        _answer(sources, options, (lambda v, f: ask(v, data, f)) if about_data else ask)

    command.__doc__ = doc
    if not about_data:  # Typer reads the signature: without ``data`` there is no --data
        signature = inspect.signature(command)
        kept = [p for p in signature.parameters.values() if p.name != "data"]
        command.__signature__ = signature.replace(parameters=kept)  # type: ignore[attr-defined]
    query_app.command(name)(command)


def _queries() -> Any:
    from cairn.provenance.yw import queries

    return queries


_query(
    "upstream",
    lambda *a: _queries().upstream(*a),
    "Steps and data items upstream of a data item (what it is made from).",
    about_data=True,
)
_query(
    "downstream",
    lambda *a: _queries().downstream(*a),
    "Steps and data items downstream of a data item (what is made from it).",
    about_data=True,
)
_query("inputs", lambda *a: _queries().inputs(*a), "The workflow's inputs.", about_data=False)
_query("outputs", lambda *a: _queries().outputs(*a), "The workflow's outputs.", about_data=False)


@query_app.command()
def depends(
    sources: list[Path] = SourcesArg,
    output: str = typer.Option(..., "--output-data", "--of", help="The output data item."),
    on: str | None = typer.Option(
        None, "--on", help="The input it may depend on (default: every workflow input)."
    ),
    depth: int = DepthOpt,
    language: str | None = LanguageOpt,
    as_json: bool = JsonOption,
) -> None:
    """Does an output depend on an input (or on all inputs)? Exit code 1 when it does not."""
    from cairn.provenance.yw import queries
    from cairn.provenance.yw.view import build_view

    answer = queries.depends(build_view(_model(sources, language), depth), output, on)
    if as_json:
        emit(answer, as_json=True)
    else:
        rows = [{"input": k, "depends": "yes" if v else "no"} for k, v in answer["inputs"].items()]
        emit(rows, as_json=False, title=f"does {output} depend on ...")
    if not answer["depends"]:
        raise typer.Exit(1)


def _recorded_files(run: str, base: Path | None) -> tuple[list[Any], Path]:
    """A recorded run's files as recon's records, relative to ``base`` (the run's folder)."""
    from cairn.cli._common import local_session
    from cairn.provenance import service
    from cairn.provenance.yw.recon import FileRecord

    with local_session() as session:
        folder = base or Path(service.get_run(session, run).cwd or ".")
        records = service.file_records(session, run, str(folder))
    roles = (("inputs", "input"), ("outputs", "output"))
    return [FileRecord(path, role) for key, role in roles for path in records[key]], folder


@app.command()
def recon(
    sources: list[Path] = SourcesArg,
    files: Path | None = typer.Option(
        None, "--files", "-f", help="The run's file list: YAML with inputs: and outputs: lists."
    ),
    run: str | None = typer.Option(
        None,
        "--run",
        help="Or a recorded run (id or number) of the local store: its files, with --base "
        "defaulting to the run's folder.",
    ),
    base: Path | None = typer.Option(
        None, "--base", help="The run's folder: paths are relative to it; logs are read there."
    ),
    logs: list[Path] = typer.Option(
        [], "--log", help="A log file the run wrote, if the YAML does not list it."
    ),
    out: Path = typer.Option(..., "--output", "-o", help="Folder for reconfacts.P (created)."),
    graph_out: Path | None = typer.Option(
        None, "--graph", help="Also draw the hybrid graph: .svg, .png, .pdf or .dot."
    ),
    depth: int = DepthOpt,
    language: str | None = LanguageOpt,
    as_json: bool = JsonOption,
) -> None:
    """Bind a run's files (a YAML list, or a recorded run) to the workflow's data via @uri
    templates; write reconfacts.P."""
    from cairn.provenance.yw.recon import (
        FileRecord,
        hybrid_resources,
        read_file_records,
        reconstruct,
        write_recon_facts,
    )

    built = _model(sources, language)
    if files is not None and run is None:
        listed = read_file_records(files)
    elif run is not None and files is None:
        listed, base = _recorded_files(run, base)
    else:
        raise Invalid("give the run's files as --files FILE.yaml or --run RUN, not both")
    records = listed + [FileRecord(str(p), "output") for p in logs]
    result = reconstruct(built, records, base=base)
    written = write_recon_facts(result, out)
    if graph_out is not None:
        from cairn.provenance.yw.graph import to_dot
        from cairn.provenance.yw.view import build_view

        shown = build_view(built, depth)
        _draw(to_dot(shown, resources=hybrid_resources(result, shown)), graph_out)
    summary = {"written": str(written), **result.to_dict()}
    if as_json:
        emit(summary, as_json=True)
        return
    bound = sum(1 for r in result.resources if r.data_ids)
    err.print(f"{bound} of {len(result.resources)} files bound to workflow data; wrote {written}")
    for item in result.unmatched_templates:
        err.print(f"[yellow]no file matched[/yellow] {item['port']}: {item['template']}")
    for path in result.unmatched_files:
        err.print(f"[dim]matched no template[/dim] {path}")
    for path in result.missing_logs:
        err.print(f"[yellow]log file not found[/yellow] {path}")
