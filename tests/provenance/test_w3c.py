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


# --- wasDerivedFrom narrowed by the YesWorkflow model -----------------------------------------

ANNOTATED = """\
# @begin two_outputs
# @in a @uri file:a.txt
# @in b @uri file:b.txt
# @out a_copy @uri file:a_copy.txt
# @out both @uri file:both.txt
#
# @begin copy_a
# @in a @uri file:a.txt
# @out a_copy @uri file:a_copy.txt
# @end copy_a
import pathlib
pathlib.Path("a_copy.txt").write_text(pathlib.Path("a.txt").read_text() + "1")
#
# @begin join
# @in a_copy @uri file:a_copy.txt
# @in b @uri file:b.txt
# @out both @uri file:both.txt
# @end join
pathlib.Path("both.txt").write_text(
    pathlib.Path("a_copy.txt").read_text() + pathlib.Path("b.txt").read_text()
)
pathlib.Path("notes.txt").write_text(pathlib.Path("c.txt").read_text() + "n")
# @end two_outputs
"""


def _derivations(store: RunStore, **kwargs: object) -> set[tuple[str, str]]:
    with store.uow.transaction() as session:
        graph = read_graph(session, **kwargs)  # type: ignore[arg-type]
    return {(output, source) for output, source, _ in graph.derived}


def test_the_yw_model_narrows_derivations(
    store: RunStore, run_script: Runner, project: Path
) -> None:
    for name in ("a", "b", "c"):
        (project / f"{name}.txt").write_text(name)
    result = run_script(ANNOTATED, name="annotated.py")
    assert result.status == "ok"
    a, b, c, script = (content(project / n) for n in ("a.txt", "b.txt", "c.txt", "annotated.py"))
    a_copy, both, notes = (content(project / n) for n in ("a_copy.txt", "both.txt", "notes.txt"))
    derived = _derivations(store, blobs=store.blobs)
    # copy_a reads a only: a_copy does not come from b (RunManager's rule would say so)
    assert {s for o, s in derived if o == a_copy} == {a, script}
    # join reads a_copy (made from a) and b
    assert {s for o, s in derived if o == both} == {a, b, script}
    # no template places notes.txt: every input of the run, as RunManager's rule says
    assert {s for o, s in derived if o == notes} == {a, b, c, script}
    # the SPARQL lineage follows the narrowed graph
    with store.uow.transaction() as session:
        graph = read_graph(session, blobs=store.blobs)
    rows = query_sparql(graph, f"SELECT ?x WHERE {{ <{a_copy}> prov:wasDerivedFrom+ ?x }}")
    assert isinstance(rows, list) and {r["x"] for r in rows} == {a, script}


def test_the_archived_script_is_read_when_the_file_changed(
    store: RunStore, run_script: Runner, project: Path
) -> None:
    for name in ("a", "b", "c"):
        (project / f"{name}.txt").write_text(name)
    run_script(ANNOTATED, name="annotated.py")
    a, b, a_copy = (content(project / n) for n in ("a.txt", "b.txt", "a_copy.txt"))
    (project / "annotated.py").write_text("# edited afterwards: no annotations any more\n")
    narrowed = _derivations(store, blobs=store.blobs)
    assert (a_copy, a) in narrowed and (a_copy, b) not in narrowed
    # without the blob store, and the script changed on disk: RunManager's rule
    plain = _derivations(store)
    assert (a_copy, a) in plain and (a_copy, b) in plain


@pytest.mark.parametrize(
    "source",
    [
        "import pathlib\npathlib.Path('out.txt').write_text(pathlib.Path('a.txt').read_text()"
        " + pathlib.Path('b.txt').read_text())\n",
        # malformed annotations: no model, so RunManager's rule, not an error
        "# @begin x\n# @in a @uri file:a.txt\nimport pathlib\npathlib.Path('out.txt')"
        ".write_text(pathlib.Path('a.txt').read_text() + pathlib.Path('b.txt').read_text())\n",
    ],
    ids=["no-annotations", "unbalanced-annotations"],
)
def test_without_a_usable_model_every_input_is_a_source(
    store: RunStore, run_script: Runner, project: Path, source: str
) -> None:
    (project / "a.txt").write_text("a")
    (project / "b.txt").write_text("b")
    run_script(source, name="plain.py")
    out, a, b = (content(project / n) for n in ("out.txt", "a.txt", "b.txt"))
    derived = _derivations(store, blobs=store.blobs)
    assert {s for o, s in derived if o == out} == {a, b, content(project / "plain.py")}
