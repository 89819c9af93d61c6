"""W3C PROV: the recorded runs as a PROV document (PROV-JSON, PROV-N, with the ``prov``
library) and as PROV-O triples in an embedded Oxigraph store, queried with SPARQL 1.1.

Both are built from one reading of the store (``read_graph``), so they always say the same:

- a run is a ``prov:Activity`` ``urn:uuid:<run id>`` (label: the script's name; start and end
  times), ``prov:wasAssociatedWith`` its user ``urn:cairn:agent:<user>@<host>``;
- a file *content* is a ``prov:Entity`` ``urn:sha256:<hex>`` (a version never hashed is
  ``urn:cairn:file:<id>``), with the paths it was seen at as ``cairn:path``. Naming entities by
  content joins runs the way ``trace_runs`` does by default: a run used what another generated;
- ``prov:used`` for read and execute, ``prov:wasGeneratedBy`` for write, and
  ``prov:wasDerivedFrom`` from every output of a run to every input of it (RunManager's rule),
  unless the run's script carries a YesWorkflow model: then an output its ``@uri`` templates
  place derives only from the inputs upstream of it in the workflow (``_derivation``).

SPARQL property paths then answer lineage, e.g. everything upstream of a content:
``SELECT ?x WHERE { <urn:sha256:…> prov:wasDerivedFrom+ ?x }``.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.errors import Invalid
from cairn.provenance._derivation import RunFile, yw_sources
from cairn.provenance._select import LOCAL, RunSelector, Scope, select_runs_query
from cairn.provenance.models import FileVersion, Run, RunEdge

if TYPE_CHECKING:
    from cairn.blobs import BlobStore

__all__ = [
    "CAIRN_NS",
    "PREFIXES",
    "ProvGraph",
    "prov_document",
    "query_sparql",
    "read_graph",
    "to_prov",
]

CAIRN_NS = "urn:cairn:ns#"
PROV_NS = "http://www.w3.org/ns/prov#"
PREFIXES = {
    "prov": PROV_NS,
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "cairn": CAIRN_NS,
}
"""Prefixes every SPARQL query may use without declaring them."""

FORMATS = ("json", "provn")


@dataclass
class ProvGraph:
    """What PROV says of a set of runs: activities, entities and the relations between them."""

    activities: dict[str, dict[str, Any]] = field(default_factory=dict)
    entities: dict[str, dict[str, Any]] = field(default_factory=dict)
    agents: dict[str, str] = field(default_factory=dict)  # iri -> label
    used: set[tuple[str, str]] = field(default_factory=set)  # (activity, entity)
    generated: set[tuple[str, str]] = field(default_factory=set)  # (entity, activity)
    derived: set[tuple[str, str, str]] = field(default_factory=set)  # (output, input, activity)
    associated: set[tuple[str, str]] = field(default_factory=set)  # (activity, agent)


def _entity_iri(version: FileVersion) -> str:
    return f"urn:sha256:{version.sha256}" if version.sha256 else f"urn:cairn:file:{version.id}"


def _script_text(version: FileVersion, blobs: BlobStore | None) -> str | None:
    """The exact text of the script a run executed: its archived copy, else the file on disk
    when it still has the recorded hash; ``None`` when neither is at hand."""
    data: bytes | None = None
    if blobs is not None and version.archived_sha256:
        try:
            data = blobs.read_bytes(version.archived_sha256)
        except Exception:  # a missing or corrupt blob: read the disk instead
            data = None
    if data is None and version.sha256 and Path(version.path).is_absolute():
        try:
            disk = Path(version.path).read_bytes()
        except OSError:
            return None
        data = disk if hashlib.sha256(disk).hexdigest() == version.sha256 else None
    return None if data is None else data.decode("utf-8", errors="replace")


def _annotatable(path: str) -> bool:
    """Whether ``path``'s extension names a language YesWorkflow comments are read in."""
    from cairn.provenance.yw.comments import EXTENSIONS

    return PurePath(path).suffix.lower() in EXTENSIONS


def _argument_names(run: Run) -> set[str]:
    """The file names among a run's arguments (a traced program's script is one of them)."""
    try:
        arguments = json.loads(run.arguments or "[]")
    except ValueError:
        return set()
    return {PurePath(a).name for a in arguments if isinstance(a, str) and a.strip()}


def read_graph(
    session: Session,
    selector: RunSelector | None = None,
    *,
    scope: Scope = LOCAL,
    blobs: BlobStore | None = None,
) -> ProvGraph:
    """The runs ``selector`` picks (all of the scope's by default) and the files they saw.

    A run whose script carries YesWorkflow annotations has its ``wasDerivedFrom`` narrowed by
    the model; the script is read from ``blobs`` (its archived version) or from disk when it
    is unchanged there."""
    runs = list(session.scalars(select_runs_query(selector or RunSelector(), scope)))
    graph = ProvGraph()
    by_seq: dict[int, str] = {}
    run_of: dict[str, Run] = {}
    for run in runs:
        iri = f"urn:uuid:{run.id}"
        by_seq[run.seq] = iri
        run_of[iri] = run
        graph.activities[iri] = {
            "label": PurePath(run.script).name if run.script else run.kind,
            "start": run.started_at,
            "end": run.ended_at,
            "kind": run.kind,
            "status": run.status,
            "seq": run.seq,
        }
        if run.username:
            agent = f"urn:cairn:agent:{run.username}@{run.host or 'localhost'}"
            graph.agents[agent] = run.username
            graph.associated.add((iri, agent))
    rows = session.execute(
        select(RunEdge.run_seq, RunEdge.access, FileVersion)
        .join(FileVersion, FileVersion.id == RunEdge.file_id)
        .where(RunEdge.run_seq.in_(list(by_seq)))
        .order_by(RunEdge.run_seq, FileVersion.id)
    )
    inputs: dict[str, set[str]] = defaultdict(set)
    outputs: dict[str, set[str]] = defaultdict(set)
    files: dict[str, list[RunFile]] = defaultdict(list)
    scripts: dict[str, FileVersion] = {}
    named: dict[str, set[str]] = {}  # a traced program's arguments, by file name
    for seq, access, version in rows:
        activity, entity = by_seq[seq], _entity_iri(version)
        run = run_of[activity]
        files[activity].append(RunFile(access, version.path, entity))
        if access == "execute" and version.path == run.script:
            if run.kind != "program" or _annotatable(version.path):  # not /usr/bin/Rscript
                scripts[activity] = version
        elif access == "read" and run.kind == "program" and activity not in scripts:
            if activity not in named:
                named[activity] = _argument_names(run)
            if PurePath(version.path).name in named[activity] and _annotatable(version.path):
                scripts[activity] = version  # `Rscript job.R`: job.R carries the model
        seen = graph.entities.setdefault(
            entity, {"paths": set(), "sha256": version.sha256, "size": version.size}
        )
        seen["paths"].add(version.path)
        if access == "write":
            graph.generated.add((entity, activity))
            outputs[activity].add(entity)
        else:
            graph.used.add((activity, entity))
            inputs[activity].add(entity)
    texts: dict[str | None, str | None] = {}  # runs of one script read it once
    for activity, made in outputs.items():
        narrowed = None
        if activity in scripts:
            run, version = run_of[activity], scripts[activity]
            if version.sha256 not in texts or version.sha256 is None:
                texts[version.sha256] = _script_text(version, blobs)
            text = texts[version.sha256]
            if text is not None:
                narrowed = yw_sources(version.path, text, files[activity], base=run.cwd)
        for output in made:
            sources = inputs[activity] if narrowed is None else narrowed.get(output)
            for source in (inputs[activity] if sources is None else sources) - {output}:
                graph.derived.add((output, source, activity))
    return graph


# --- PROV-JSON and PROV-N (the prov library) ------------------------------------------------------


def prov_document(graph: ProvGraph) -> Any:
    """The graph as a ``prov.model.ProvDocument``."""
    from prov.model import PROV_LABEL, ProvDocument

    document = ProvDocument()
    document.add_namespace("cairn", CAIRN_NS)
    document.add_namespace("uuid", "urn:uuid:")
    document.add_namespace("sha256", "urn:sha256:")
    document.add_namespace("file", "urn:cairn:file:")
    document.add_namespace("agent", "urn:cairn:agent:")

    def qname(iri: str) -> str:
        for prefix, base in (
            ("uuid", "urn:uuid:"),
            ("sha256", "urn:sha256:"),
            ("file", "urn:cairn:file:"),
            ("agent", "urn:cairn:agent:"),
        ):
            if iri.startswith(base):
                return f"{prefix}:{iri.removeprefix(base)}"
        raise ValueError(iri)

    for iri, run in graph.activities.items():
        document.activity(
            qname(iri),
            run["start"],
            run["end"],
            {PROV_LABEL: run["label"], "cairn:status": run["status"], "cairn:seq": run["seq"]},
        )
    for iri, seen in graph.entities.items():
        attributes: dict[Any, Any] = {PROV_LABEL: ", ".join(sorted(seen["paths"]))}
        if seen["sha256"]:
            attributes["cairn:sha256"] = seen["sha256"]
        if seen["size"] is not None:
            attributes["cairn:size"] = seen["size"]
        document.entity(qname(iri), attributes)
    for iri, name in graph.agents.items():
        document.agent(qname(iri), {PROV_LABEL: name})
    for activity, entity in sorted(graph.used):
        document.used(qname(activity), qname(entity))
    for entity, activity in sorted(graph.generated):
        document.wasGeneratedBy(qname(entity), qname(activity))
    for output, source, activity in sorted(graph.derived):
        document.wasDerivedFrom(qname(output), qname(source), qname(activity))
    for activity, agent in sorted(graph.associated):
        document.wasAssociatedWith(qname(activity), qname(agent))
    return document


def to_prov(graph: ProvGraph, fmt: str = "json") -> str:
    """PROV-JSON (``json``) or PROV-N (``provn``) text."""
    if fmt not in FORMATS:
        raise Invalid(f"unknown PROV format {fmt!r}: use {' or '.join(FORMATS)}")
    document = prov_document(graph)
    if fmt == "provn":
        return str(document.get_provn()) + "\n"
    return str(document.serialize(format="json", indent=2)) + "\n"


# --- PROV-O in Oxigraph, and SPARQL ---------------------------------------------------------------


def _time(value: datetime) -> Any:
    from pyoxigraph import Literal, NamedNode

    return Literal(value.isoformat(), datatype=NamedNode(PREFIXES["xsd"] + "dateTime"))


def _triples(graph: ProvGraph) -> list[Any]:
    from pyoxigraph import DefaultGraph, Literal, NamedNode, Quad

    def p(name: str) -> Any:
        prefix, local = name.split(":", 1)
        return NamedNode(PREFIXES[prefix] + local)

    node, a, label = NamedNode, p("rdf:type"), p("rdfs:label")
    quads: list[tuple[Any, Any, Any]] = []
    for iri, run in graph.activities.items():
        quads += [(node(iri), a, p("prov:Activity")), (node(iri), label, Literal(run["label"]))]
        quads.append((node(iri), p("cairn:status"), Literal(run["status"])))
        quads.append((node(iri), p("cairn:seq"), Literal(run["seq"])))
        if run["start"] is not None:
            quads.append((node(iri), p("prov:startedAtTime"), _time(run["start"])))
        if run["end"] is not None:
            quads.append((node(iri), p("prov:endedAtTime"), _time(run["end"])))
    for iri, seen in graph.entities.items():
        quads.append((node(iri), a, p("prov:Entity")))
        quads += [(node(iri), p("cairn:path"), Literal(path)) for path in sorted(seen["paths"])]
        if seen["sha256"]:
            quads.append((node(iri), p("cairn:sha256"), Literal(seen["sha256"])))
    for iri, name in graph.agents.items():
        quads += [(node(iri), a, p("prov:Agent")), (node(iri), label, Literal(name))]
    quads += [(node(x), p("prov:used"), node(y)) for x, y in graph.used]
    quads += [(node(x), p("prov:wasGeneratedBy"), node(y)) for x, y in graph.generated]
    quads += [(node(x), p("prov:wasDerivedFrom"), node(y)) for x, y, _ in graph.derived]
    quads += [(node(x), p("prov:wasAssociatedWith"), node(y)) for x, y in graph.associated]
    return [Quad(s, pr, o, DefaultGraph()) for s, pr, o in quads]


def _term(value: Any) -> str | None:
    return None if value is None else str(value.value)


def query_sparql(graph: ProvGraph, query: str) -> list[dict[str, str | None]] | bool:
    """Answer a SPARQL 1.1 query over the graph's PROV-O triples (``PREFIXES`` predeclared):
    rows of ``SELECT`` variables, a ``bool`` for ``ASK``, ``subject/predicate/object`` rows
    for ``CONSTRUCT`` and ``DESCRIBE``. A query that does not parse is ``Invalid``."""
    from pyoxigraph import QueryBoolean, QuerySolutions, Store

    store = Store()  # in memory, gone with the query: SPARQL updates change nothing kept
    store.extend(_triples(graph))
    try:
        answer = store.query(query, prefixes=PREFIXES)
    except SyntaxError as exc:
        raise Invalid(f"SPARQL syntax error: {exc}") from exc
    except OSError as exc:  # evaluation errors (e.g. a SERVICE call: no network here)
        raise Invalid(f"SPARQL query failed: {exc}") from exc
    if isinstance(answer, QueryBoolean):
        return bool(answer)
    if isinstance(answer, QuerySolutions):
        names = [variable.value for variable in answer.variables]
        return [{name: _term(row[name]) for name in names} for row in answer]
    return [
        {"subject": _term(t.subject), "predicate": _term(t.predicate), "object": _term(t.object)}
        for t in answer
    ]
