"""W3C PROV: PROV-JSON and PROV-N with the prov library, SPARQL property paths with Oxigraph."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from prov.model import ProvDocument

from cairn.errors import Invalid
from cairn.provenance import RecordResult, RunStore
from cairn.provenance._select import RunSelector, Scope
from cairn.provenance.service import record_activity
from cairn.provenance.w3c import query_sparql, read_graph, to_prov
from tests.factories import make_org

Runner = Callable[..., RecordResult]

TRANSFORM = (
    "import pathlib, sys\n"
    "text = pathlib.Path(sys.argv[2]).read_text()\n"
    "pathlib.Path(sys.argv[1]).write_text(text + '>' + sys.argv[1])\n"
)


def content(path: Path) -> str:
    return "urn:sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def chain(run_script: Runner, project: Path) -> tuple[RecordResult, RecordResult]:
    """raw.txt -> one.py -> mid.txt -> two.py -> end.txt"""
    (project / "raw.txt").write_text("raw")
    first = run_script(TRANSFORM, "mid.txt", "raw.txt", name="one.py")
    second = run_script(TRANSFORM, "end.txt", "mid.txt", name="two.py")
    return first, second


def test_prov_json_reads_back_with_the_prov_library(
    store: RunStore, project: Path, chain: tuple[RecordResult, RecordResult]
) -> None:
    first, second = chain
    with store.uow.transaction() as session:
        graph = read_graph(session)
    text = to_prov(graph, "json")
    document = ProvDocument.deserialize(content=text, format="json")
    assert document == ProvDocument.deserialize(content=to_prov(graph, "json"), format="json")
    data = json.loads(text)
    assert set(data["activity"]) == {f"uuid:{first.run_id}", f"uuid:{second.run_id}"}
    mid, raw, end = (
        content(project / n).removeprefix("urn:") for n in ("mid.txt", "raw.txt", "end.txt")
    )
    generation = {(g["prov:entity"], g["prov:activity"]) for g in data["wasGeneratedBy"].values()}
    assert (mid, f"uuid:{first.run_id}") in generation
    assert (end, f"uuid:{second.run_id}") in generation
    derivations = {
        (d["prov:generatedEntity"], d["prov:usedEntity"]) for d in data["wasDerivedFrom"].values()
    }
    assert (mid, raw) in derivations and (end, mid) in derivations
    assert (end, raw) not in derivations  # only a run's own inputs, not transitively


def test_prov_n_names_every_relation(
    store: RunStore, chain: tuple[RecordResult, RecordResult]
) -> None:
    with store.uow.transaction() as session:
        graph = read_graph(session)
    text = to_prov(graph, "provn")
    assert text.startswith("document")
    for relation in ("activity(", "entity(", "used(", "wasGeneratedBy(", "wasDerivedFrom("):
        assert relation in text
    with pytest.raises(Invalid, match="unknown PROV format"):
        to_prov(graph, "xml")


def test_a_selector_limits_the_document(
    store: RunStore, chain: tuple[RecordResult, RecordResult]
) -> None:
    first, _ = chain
    with store.uow.transaction() as session:
        graph = read_graph(session, RunSelector(seq=str(first.seq)))
    assert list(graph.activities) == [f"urn:uuid:{first.run_id}"]


def test_sparql_property_paths_answer_lineage_across_runs(
    store: RunStore, project: Path, chain: tuple[RecordResult, RecordResult]
) -> None:
    with store.uow.transaction() as session:
        graph = read_graph(session)
    end, mid, raw = (content(project / n) for n in ("end.txt", "mid.txt", "raw.txt"))
    rows = query_sparql(graph, f"SELECT ?x WHERE {{ <{end}> prov:wasDerivedFrom+ ?x }}")
    assert isinstance(rows, list)
    assert {r["x"] for r in rows} >= {mid, raw}
    scripts = query_sparql(
        graph,
        f"SELECT DISTINCT ?label WHERE {{ <{end}> (prov:wasGeneratedBy/prov:used)* ?e ."
        " ?e prov:wasGeneratedBy ?run . ?run rdfs:label ?label } ORDER BY ?label",
    )
    assert scripts == [{"label": "one.py"}, {"label": "two.py"}]
    assert query_sparql(graph, f"ASK {{ <{raw}> ^prov:wasDerivedFrom+ <{end}> }}") is True
    assert query_sparql(graph, f"ASK {{ <{end}> ^prov:wasDerivedFrom+ <{raw}> }}") is False
    triples = query_sparql(graph, f"CONSTRUCT {{ ?s ?p <{raw}> }} WHERE {{ ?s ?p <{raw}> }}")
    assert isinstance(triples, list) and {t["predicate"] for t in triples} == {
        "http://www.w3.org/ns/prov#used",
        "http://www.w3.org/ns/prov#wasDerivedFrom",
    }


@pytest.mark.parametrize(
    "query", ["SELECT ?x WHERE { ?x ", "SELEC * WHERE {}", "SELECT ?x WHERE { ?x nope:p ?y }"]
)
def test_a_sparql_syntax_error_is_a_clear_error(store: RunStore, query: str) -> None:
    with store.uow.transaction() as session:
        graph = read_graph(session)
    with pytest.raises(Invalid, match="SPARQL syntax error"):
        query_sparql(graph, query)


def test_an_update_changes_nothing_kept(
    store: RunStore, chain: tuple[RecordResult, RecordResult]
) -> None:
    with store.uow.transaction() as session:
        graph = read_graph(session)
    with pytest.raises(Invalid):
        query_sparql(graph, "DELETE WHERE { ?s ?p ?o }")  # an update is not a query
    count = query_sparql(graph, "SELECT (COUNT(*) AS ?n) WHERE { ?s a prov:Activity }")
    assert count == [{"n": "2"}]


def test_other_organisations_runs_stay_out(store: RunStore) -> None:
    with store.uow.transaction() as session:
        mine, theirs = make_org(session), make_org(session)
        record_activity(session, organisation_id=theirs.id, kind="upload", generated=["a" * 64])
        mine_id, theirs_id = mine.id, theirs.id
    with store.uow.transaction() as session:
        assert read_graph(session).activities == {}
        assert read_graph(session, scope=Scope((mine_id,))).entities == {}
        theirs_graph = read_graph(session, scope=Scope((theirs_id,)))
    assert list(theirs_graph.entities) == ["urn:sha256:" + "a" * 64]
