"""`cairn record` and `cairn runs …`: record runs locally and query them with RunManager's
calls (list, view, delete, trace, checkout, export). Both work on the data folder's store
(CAIRN_DATA_DIR / CAIRN_DATABASE_URL) and need no server."""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from cairn.cli._common import CairnTyper, JsonOption, emit, local_session

if TYPE_CHECKING:
    from rich.console import Console

    from cairn.provenance.service import RunSelector, RunView

app = CairnTyper(help="Recorded runs: list, view, trace, check out, export and delete them.")


@functools.cache
def err() -> Console:
    """rich's console on stderr, made on first use: `cairn record` prints one line, and
    importing rich was ~20 ms of its start-up (issue #14)."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


IdOpt = typer.Option(None, "--id", "--run-id", help="Run id; '*' is a wildcard.")
ScriptOpt = typer.Option(None, "--script", help="Substring of the script path.")
StartOpt = typer.Option(None, "--start", help="Started at or after (2026, 2026-11, …).")
EndOpt = typer.Option(None, "--end", help="Started at or before (2026, 2026-11, …).")
TagOpt = typer.Option(None, "--tag", help="Tag substring; repeat to OR several.")
ErrorOpt = typer.Option(None, "--error", help="Substring of the error message.")
SeqOpt = typer.Option(None, "--seq", help="Run number or range (3 or 1:10).")
OrderOpt = typer.Option("-start_time", "--order-by", help="Column, '-' for descending.")


_SELECTOR_OPTIONS = {
    "run_id": (str | None, IdOpt),
    "script": (str | None, ScriptOpt),
    "start": (str | None, StartOpt),
    "end": (str | None, EndOpt),
    "tag": (list[str] | None, TagOpt),
    "error": (str | None, ErrorOpt),
    "seq": (str | None, SeqOpt),
    "order_by": (str, OrderOpt),
}


def _selecting(*, ordered: bool = True) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command RunManager's selector options (--id, --script, --start, --end, --tag,
    --error, --seq and, when ``ordered``, --order-by), handed to it as one ``selector``."""
    names = [n for n in _SELECTOR_OPTIONS if ordered or n != "order_by"]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = inspect.signature(command)
        kept = [p for p in own.parameters.values() if p.name != "selector"]
        added = [
            inspect.Parameter(
                n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=opt, annotation=kind
            )
            for n in names
            for kind, opt in [_SELECTOR_OPTIONS[n]]
        ]

        @functools.wraps(command)
        def run(**options: Any) -> None:
            from cairn.provenance.service import RunSelector

            picked = {n: options.pop(n) for n in names}
            picked["tag"] = tuple(picked["tag"] or ())
            command(selector=RunSelector(**picked), **options)

        run.__signature__ = own.replace(parameters=added + kept)  # type: ignore[attr-defined]
        hints = {k: v for k, v in command.__annotations__.items() if k != "selector"}
        run.__annotations__ = {p.name: p.annotation for p in added} | hints
        return run

    return decorate


def _short_time(value: object) -> str:
    return "" if value is None else str(value)[:19].replace("T", " ")


def _table(rows: list[dict[str, Any]], *, full: bool) -> None:
    """RunManager's listRuns table: more columns the wider the terminal (all with --full)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = Console()
    width = out.width
    columns = ["seq", "script", "tags", "start_time"]
    if full or width >= 100:
        columns += ["end_time", "run_id"]
    if full or width >= 140:
        columns += ["status", "error_message"]
    table = Table(show_lines=False)
    for name in columns:
        table.add_column(name.replace("_", " "), overflow="fold" if full else "ellipsis")
    for row in rows:
        cells = []
        for name in columns:
            value = row.get(name)
            if name == "script":
                value = Path(str(value)).name if value else ""
                value = value if full else value[:30]
            elif name == "tags":
                value = ", ".join(value or [])
                value = value if full else value[:20]
            elif name in ("start_time", "end_time"):
                value = _short_time(value)
            elif name == "run_id" and not full:
                value = "..." + str(value)[-10:]
            elif name == "error_message" and value and not full:
                value = str(value)[:30]
            cells.append(Text("" if value is None else str(value)))
        table.add_row(*cells)
    out.print(table)


@app.command("list")
@_selecting()
def list_(
    selector: RunSelector,
    full: bool = typer.Option(False, "--full", help="All columns, nothing shortened."),
    as_json: bool = JsonOption,
) -> None:
    """List recorded runs, newest first."""
    from cairn.provenance import service

    with local_session() as session:
        rows = service.list_runs(session, selector)
    if as_json:
        emit(rows, as_json=True)
    elif not rows:
        err().print("No runs matched search criteria.")
    else:
        _table(rows, full=full)


def _print_view(view: RunView, sections: list[str], verbose: bool) -> None:
    from rich.console import Console
    from rich.text import Text

    data = view.as_dict()
    out = Console(highlight=False)
    if "details" in sections:
        out.print("[bold]\\[details]: Run details[/bold]")
        out.print("-" * 40)
        if data["kind"] == "console":
            out.print(f"Started recording console input at {data['start_time']}", markup=False)
        else:
            out.print(f'"{data["script"]}" was executed on {data["start_time"]}', markup=False)
        fields = [
            ("Tag", ", ".join(f'"{t}"' for t in data["tags"])),  # type: ignore[attr-defined]
            ("Run sequence #", data["seq"]),
            ("Run Id", data["run_id"]),
            ("Kind", data["kind"]),
            ("Arguments", " ".join(data["arguments"])),  # type: ignore[arg-type]
            ("Working directory", data["cwd"]),
            ("Run by user", data["user"]),
            ("HostId", data["host"]),
            ("Operating system", data["os"]),
            ("Interpreter", f"{data['interpreter']} ({data['interpreter_version']})"),
            ("Dependencies", f"{len(data['packages'])} packages"),  # type: ignore[arg-type]
            ("Run start time", data["start_time"]),
            ("Run end time", data["end_time"]),
            ("Status", f"{data['status']} (exit {data['exit_code']})"),
            ("Error message from this run", data["error_message"] or ""),
        ]
        for label, value in fields:
            out.print(f"{label}: {'' if value is None else value}", markup=False)
        if data["traceback"]:
            out.print(str(data["traceback"]).rstrip(), markup=False)
        if verbose:
            for name in data["packages"]:  # type: ignore[attr-defined]
                out.print(f"  {name}", markup=False)
    for section, key in (("used", "used"), ("generated", "generated")):
        if section not in sections:
            continue
        items: list[dict[str, Any]] = data[key]  # type: ignore[assignment]
        out.print(f"[bold]\\[{section}]: {len(items)} items {section} by this run[/bold]")
        if items:
            from rich.table import Table

            table = Table()
            for column in ("Location", "Size (kb)", "Modified time", "Archived"):
                table.add_column(column)
            for item in items:
                location = str(item["path"])
                location = location if len(location) <= 60 else "..." + location[-57:]
                size = "" if item["size"] is None else f"{item['size'] / 1024:.1f}"
                kept = "yes" if item["archived"] else f"no ({item['flagged'] or 'not kept'})"
                table.add_row(
                    *map(Text, (location, size, _short_time(item["modified_time"]), kept))
                )
            out.print(table)
    if verbose:
        out.print("[bold]\\[provenance]: relations[/bold]")
        run = f"urn:uuid:{data['run_id']}"
        for item in data["used"]:  # type: ignore[attr-defined]
            out.print(f"{run} prov:used {item['path']} ({item['sha256']})", markup=False)
        for item in data["generated"]:  # type: ignore[attr-defined]
            out.print(f"{item['path']} ({item['sha256']}) prov:wasGeneratedBy {run}", markup=False)
    out.print()


@app.command()
@_selecting()
def view(
    selector: RunSelector,
    section: list[str] | None = typer.Option(
        None, "--section", help="details, used, generated (repeat; default all)."
    ),
    verbose: bool = typer.Option(False, "--verbose", help="Add packages and PROV relations."),
    as_json: bool = JsonOption,
) -> None:
    """Show runs in detail: what ran where, and every file used and generated."""
    from cairn.errors import Invalid
    from cairn.provenance import service

    sections = section or ["details", "used", "generated"]
    unknown = set(sections) - {"details", "used", "generated"}
    if unknown:
        raise Invalid(f"unknown section {sorted(unknown)[0]!r}: use details, used, generated")
    with local_session() as session:
        views = service.view_runs(session, selector)
        if as_json:
            emit([v.as_dict() for v in views], as_json=True)
            return
        if not views:
            err().print("No runs matched search criteria.")
        for one in views:
            _print_view(one, sections, verbose)


@app.command()
@_selecting(ordered=False)
def delete(
    selector: RunSelector,
    noop: bool = typer.Option(False, "--noop", help="Only list what would be deleted."),
    as_json: bool = JsonOption,
) -> None:
    """Delete runs and the archived file versions no other run needs (irreversible)."""
    from cairn.cli._common import local_blob_store
    from cairn.config import get_settings
    from cairn.provenance import service

    with local_session() as session:
        report = service.delete_runs(session, selector, noop=noop)
    freed: list[str] = []
    if report.unreferenced_blobs:  # only once the rows are gone for good
        blobs = local_blob_store(get_settings())
        with local_session() as session:
            freed = service.purge_blobs(session, blobs, report.unreferenced_blobs)
    if as_json:
        emit({"noop": noop, "runs": report.runs, "freed_blobs": freed}, as_json=True)
        return
    verb = "would have been" if noop else "were"
    err().print(f"The following {len(report.runs)} runs {verb} deleted:")
    if report.runs:
        _table(report.runs, full=False)
    if freed:
        err().print(f"{len(freed)} archived file versions no other run needed were removed.")


@app.command()
def trace(
    target: str = typer.Argument(..., help="A file path, a SHA-256 or a run id / number."),
    direction: str = typer.Option("upstream", "--direction", help="upstream, downstream, both."),
    join: str = typer.Option("hash", "--join", help="hash (content), path, or strict."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Draw the graph to .svg, .png or .dot (Graphviz)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """What a file (or a run) came from, or what came of it, across every recorded run."""
    from cairn.provenance import service

    with local_session() as session:
        found = service.trace_runs(session, target, direction=direction, join=join)
        data = found.as_dict()
        if output is not None:
            from cairn.provenance.plot import render

            render(found, output)
    if as_json:
        emit(data, as_json=True)
        return
    runs: list[dict[str, Any]] = data["runs"]  # type: ignore[assignment]
    err().print(f"{len(runs)} runs {direction} of {target} (joined by {join}):", markup=False)
    if runs:
        _table(runs, full=False)
    files: list[dict[str, Any]] = data["files"]  # type: ignore[assignment]
    emit(
        [{"path": f["path"], "sha256": (f["sha256"] or "")[:12]} for f in files],
        as_json=False,
        title="Files",
    )
    if output is not None:
        err().print(f"Graph written to {output}")


@app.command()
def versions(
    path: str = typer.Argument(..., help="A file path (absolute, or relative to this folder)."),
    as_json: bool = JsonOption,
) -> None:
    """The different versions recorded at one path, oldest first, with the runs that
    generated and used each: which runs produced different versions of a file."""
    from cairn.provenance import service

    with local_session() as session:
        found = [v.as_dict() for v in service.path_versions(session, path)]
    if as_json:
        emit(found, as_json=True)
        return

    def runs_of(entries: Any) -> str:
        return ", ".join(f"{e['seq']} ({Path(str(e['script'] or '?')).name})" for e in entries)

    rows = [
        {
            "version": i,
            "sha256": (str(v["sha256"] or ""))[:12],
            "size": v["size"],
            "first seen": _short_time(v["first_seen"]),
            "generated by": runs_of(v["generated_by"]),
            "used by": runs_of(v["used_by"]),
        }
        for i, v in enumerate(found, 1)
    ]
    emit(rows, as_json=False, title=f"{len(found)} versions of {path}")


@app.command()
@_selecting()
def plot(
    selector: RunSelector,
    output: Path = typer.Option(..., "-o", "--output", help="The graph: .svg, .png or .dot."),
) -> None:
    """Draw the selected runs (all by default) and the files they used and generated."""
    from cairn.provenance import service
    from cairn.provenance.plot import render

    with local_session() as session:
        found = service.plot_runs(session, selector)
        if not found.runs:
            err().print("No runs matched search criteria.")
            raise typer.Exit(1)
        render(found, output)
    err().print(f"{len(found.runs)} runs and {len(found.files)} files drawn to {output}")


@app.command()
def checkout(
    run: str = typer.Argument(..., help="Run id or number."),
    path: str = typer.Argument(..., help="The file's path as the run saw it."),
    to: Path = typer.Option(Path("."), "--to", help="File or folder to write it to."),
    access: str | None = typer.Option(
        None, "--access", help="read or write: the version found or the one left behind."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Write the exact version of a file that a run used or generated."""
    from cairn.cli._common import local_blob_store
    from cairn.config import get_settings
    from cairn.provenance import service

    blobs = local_blob_store(get_settings())
    with local_session() as session:
        version = service.checkout(session, blobs, run, path, to=to, access=access)
        data = service.version_dict(version)
    emit(data if as_json else f"Checked out {data['path']} ({data['sha256']})", as_json=as_json)


@app.command("export")
def export(
    run: str = typer.Argument(..., help="Run id or number."),
    base: Path = typer.Option(Path("."), "--base", help="Paths are written relative to this."),
    to: Path | None = typer.Option(None, "--to", help="YAML file to write (else stdout)."),
) -> None:
    """The run's used and generated paths as the YAML (inputs: / outputs:) YesWorkflow's
    recon reads."""
    from cairn.provenance import service

    with local_session() as session:
        text = service.export_file_records(session, run, str(base), to=to)
    if to is None:
        typer.echo(text, nl=False)


@app.command("export-prolog")
def export_prolog(
    to: Path | None = typer.Option(None, "-o", "--output", help="File to write (else stdout)."),
) -> None:
    """Every run as Prolog facts in RunManager's layout (execmeta/17, filemeta/11, tag/3)
    plus the derived views the published rule sets use (docs/provenance.md)."""
    from cairn.provenance.prolog import export_prolog as facts

    with local_session() as session:
        text = facts(session)
    if to is None:
        typer.echo(text, nl=False)
    else:
        to.write_text(text, encoding="utf-8")


@app.command()
def metadata(
    run: str = typer.Argument(..., help="Run id or number."),
    set_from: Path | None = typer.Option(
        None,
        "--set",
        help="A YAML file of fields to set (title, creators, description, "
        "keywords, license); without it the current metadata is printed as such a file.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """The run's science metadata for publishing (RunManager's putMetadata): print the
    template, edit it, then --set it."""
    import yaml

    from cairn.errors import Invalid
    from cairn.provenance import publishing

    with local_session() as session:
        if set_from is None:
            document = publishing.get_metadata(session, run)
        else:
            try:
                wanted = yaml.safe_load(set_from.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as exc:
                raise Invalid(f"cannot read {set_from}: {exc}") from exc
            document = publishing.put_metadata(session, run, wanted)
    if as_json:
        emit(document, as_json=True)
    else:
        typer.echo(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), nl=False)


@app.command()
def publish(
    run: str = typer.Argument(..., help="Run id or number."),
    to: str = typer.Option(
        ".",
        "--to",
        help="The zip to write, a folder for run-<seq>-v<version>.zip, or a server's URL "
        "(https://…) to upload the package to (cairn login first).",
    ),
    update: bool = typer.Option(
        False, "--update", help="Publish a run published before as a new, linked version."
    ),
    organisation_id: str | None = typer.Option(
        None, "--org", help="With a URL: the organisation to upload into (if you have several)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Publish a run as an RO-Crate inside a BagIt bag (one zip): its scripts, the exact
    versions of its files, environment, metadata, PROV and YesWorkflow model. With a URL,
    the zip is uploaded to that server, where it becomes a read-only run of your organisation."""
    from cairn.cli._common import local_blob_store
    from cairn.config import get_settings
    from cairn.provenance import publishing

    remote = to.startswith(("http://", "https://"))
    blobs = local_blob_store(get_settings())
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory())) if remote else Path(to)
        upload = None
        if remote:
            from cairn.cli._common import remote_client

            client = stack.enter_context(remote_client(to))

            def upload(path: Path) -> Any:
                return client.runs.upload_published(path, organisation_id=organisation_id)

        # The upload runs inside the local transaction: a refused or failed upload records
        # no publication here, so the retry needs no --update (#14).
        with local_session() as session:
            published = publishing.publish_run(
                session, blobs, run, to=folder, update=update, upload=upload
            )
        received = published.uploaded
    if remote:
        if as_json:
            emit(received, as_json=True)
        else:
            doi = f", DOI {received['doi']}" if received.get("doi") else ""
            err().print(
                f"published run {run} as urn:uuid:{published.id} and uploaded it to {to}: "
                f"run {received['run']['run_id']}{doi}"
            )
        return
    if as_json:
        emit(published.as_dict(), as_json=True)
    else:
        err().print(
            f"published run {run} as urn:uuid:{published.id} (version {published.version}, "
            f"{published.files} files): {published.path}"
        )


def _local_blobs() -> Any:
    """The data folder's blob store (archived scripts: YesWorkflow narrows derivations)."""
    from cairn.cli._common import local_blob_store
    from cairn.config import get_settings

    return local_blob_store(get_settings())


@app.command("export-prov")
@_selecting()
def export_prov(
    selector: RunSelector,
    fmt: str = typer.Option("json", "--format", "-f", help="json (PROV-JSON) or provn (PROV-N)."),
    to: Path | None = typer.Option(None, "-o", "--output", help="File to write (else stdout)."),
) -> None:
    """The selected runs (all by default) as a W3C PROV document: activities, file contents as
    entities, used / wasGeneratedBy / wasDerivedFrom / wasAssociatedWith (docs/provenance.md)."""
    from cairn.provenance.w3c import read_graph, to_prov

    with local_session() as session:
        graph = read_graph(session, selector, blobs=_local_blobs())
    text = to_prov(graph, fmt)
    if to is None:
        typer.echo(text, nl=False)
    else:
        to.write_text(text, encoding="utf-8")


@app.command()
def query(
    prolog: Path | None = typer.Option(None, "--prolog", help="A Prolog rules file (.P)."),
    goal: str | None = typer.Option(None, "--goal", help="The Prolog goal, e.g. 'p(X, Y)'."),
    sql: str | None = typer.Option(
        None,
        "--sql",
        help="One read-only SELECT over the views runs, tags, files, used, generated and "
        "lineage_edges (docs/provenance.md).",
    ),
    sparql: str | None = typer.Option(
        None,
        "--sparql",
        help="A SPARQL 1.1 query over the runs as PROV-O (prefixes prov, rdfs, xsd, cairn "
        "predeclared), e.g. 'SELECT ?x WHERE { <urn:sha256:...> prov:wasDerivedFrom+ ?x }'.",
    ),
    as_json: bool = JsonOption,
) -> None:
    """Query the recorded runs: Prolog rules over RunManager's facts (SWI-Prolog), SQL over
    read-only views, or SPARQL with property paths over PROV-O."""
    from cairn.errors import Invalid

    if sum(x is not None for x in (prolog, sql, sparql)) != 1:
        raise Invalid("give one of --prolog RULES.P --goal '...', --sql '...' or --sparql '...'")
    answer: list[dict[str, Any]] | bool
    if sql is not None:
        from cairn.provenance.sql import query_sql

        with local_session() as session:
            answer = query_sql(session, sql).as_dicts()
    elif sparql is not None:
        from cairn.provenance.w3c import query_sparql, read_graph

        with local_session() as session:  # read, then answer with no transaction open
            graph = read_graph(session, blobs=_local_blobs())
        answer = query_sparql(graph, sparql)
    else:
        from cairn.provenance.prolog import export_prolog as facts
        from cairn.provenance.prolog import query_prolog

        if not goal:
            raise Invalid("give --goal '...' with --prolog")
        with local_session() as session:
            text = facts(session)
        answer = query_prolog(text, prolog or Path(), goal)
    if isinstance(answer, bool):  # a SPARQL ASK: the answer is also the exit code
        emit({"answer": answer}, as_json=as_json)
        if not answer:
            raise typer.Exit(1)
    elif as_json:
        emit(answer, as_json=True)
    elif not answer:
        err().print("No solutions." if prolog is not None else "No rows.")
    else:
        emit(answer, as_json=False)


# --- cairn record -------------------------------------------------------------------------------


class _RecordGroup(TyperGroup):
    """``cairn record`` is a group with only a callback, so that everything after the script
    (its own options included) reaches it untouched; errors map to exit codes as in every
    other command."""

    def invoke(self, ctx: Any) -> Any:
        from cairn import errors

        try:
            return super().invoke(ctx)
        except errors.CairnError as exc:
            err().print(f"[red]Error:[/red] {exc.message}")
            raise typer.Exit(errors.outcome_for(exc).exit_code) from exc


recorder = CairnTyper(
    cls=_RecordGroup,
    help="Run a script or program and record what it read and wrote (no server needed).",
    invoke_without_command=True,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)


@recorder.callback()
def record(
    program: list[str] = typer.Argument(
        None, help="SCRIPT.py [ARGS] (or, with --syscalls, -- PROGRAM [ARGS])."
    ),
    tag: list[str] | None = typer.Option(None, "--tag", help="Tag the run; repeat for several."),
    syscalls: bool = typer.Option(
        False, "--syscalls", help="Trace any program and its children with strace."
    ),
    max_archive_size: int = typer.Option(
        256 * 1024 * 1024, "--max-archive-size", help="Larger files are recorded by hash only."
    ),
    include: list[str] | None = typer.Option(
        None, "--include", help="Only record paths matching this glob (repeatable)."
    ),
    exclude: list[str] | None = typer.Option(
        None, "--exclude", help="Never record paths matching this glob (repeatable)."
    ),
    check: bool = typer.Option(False, "--check", help="Say which capture modes work here."),
    as_json: bool = JsonOption,
) -> None:
    """Run a script or program and record what it read and wrote (no server needed)."""
    if check:
        _check(as_json)
        return
    from cairn.errors import Invalid
    from cairn.provenance import RunStore
    from cairn.provenance.capture import CaptureOptions

    if not program:
        raise Invalid("nothing to record: give SCRIPT.py [ARGS] or --syscalls -- PROGRAM [ARGS]")
    options = CaptureOptions(max_archive_bytes=max_archive_size, include=tuple(include or ()))
    if exclude:
        options.exclude = (*options.exclude, *exclude)
    with RunStore.local() as store:
        if syscalls:
            from cairn.provenance.syscalls import record_program

            result = record_program(program, tag=tag or (), store=store, options=options)
        else:
            from cairn.provenance.recording import record_script

            result = record_script(
                program[0], *program[1:], tag=tag or (), store=store, options=options
            )
    summary = {
        "run_id": result.run_id,
        "seq": result.seq,
        "status": result.status,
        "exit_code": result.exit_code,
    }
    if as_json:
        emit(summary, as_json=True)
    else:
        typer.echo(  # plain text: rich would cost its import for one line
            f"Recorded run {result.seq} ({result.run_id}): {result.status}, "
            f"exit status {result.exit_code}",
            err=True,
        )
    if result.exit_code:
        raise typer.Exit(result.exit_code if result.exit_code < 256 else 1)


def _check(as_json: bool) -> None:
    """Which capture modes and tools this machine offers."""
    tools = {name: shutil.which(name) for name in ("strace", "dot", "swipl")}
    data = {
        "python": "audit hooks (always available)",
        "syscalls": "strace found" if tools["strace"] else "strace missing (apt install strace)",
        "graphs": "dot found" if tools["dot"] else "dot missing (apt install graphviz)",
        "prolog": "swipl found" if tools["swipl"] else "swipl missing (apt install swi-prolog-nox)",
    }
    emit(data if as_json else json.dumps(data, indent=2), as_json=as_json)
