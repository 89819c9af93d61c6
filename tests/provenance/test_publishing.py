"""Publishing a run: RO-Crate in BagIt, read back with the rocrate and bagit libraries."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import bagit
import pytest
from rocrate.rocrate import ROCrate

from cairn.errors import Conflict, Invalid
from cairn.provenance import RecordResult, RunStore
from cairn.provenance._select import Scope
from cairn.provenance.errors import RunNotFound
from cairn.provenance.publishing import get_metadata, publish_run, put_metadata
from cairn.provenance.service import record_activity
from tests.factories import make_org

Runner = Callable[..., RecordResult]

ANNOTATED = """\
# @begin double @desc Doubles the text.
# @in source @uri file:{name}.txt
# @out doubled @uri file:doubled.txt
import pathlib, sys
text = pathlib.Path(sys.argv[1]).read_text()
pathlib.Path("doubled.txt").write_text(text * 2)
# @end double
"""

LICENSED = {"title": "Doubling", "creators": ["Ada Lovelace"], "license": "CC-BY-4.0"}


@pytest.fixture
def run(run_script: Runner, project: Path) -> RecordResult:
    (project / "in.txt").write_text("abc")
    return run_script(ANNOTATED, "in.txt", name="double.py", tag=["paper"])


def unpack(zip_path: Path, into: Path) -> Path:
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(into)
    (bag,) = into.iterdir()
    return bag


def test_a_published_run_is_a_valid_bag_holding_a_valid_crate(
    store: RunStore, run: RecordResult, project: Path, tmp_path: Path
) -> None:
    with store.uow.transaction() as session:
        template = get_metadata(session, run.run_id)
        assert template["title"].startswith(f"Run {run.seq} of double.py")
        assert template["keywords"] == ["paper"] and template["license"] == ""
        put_metadata(session, run.run_id, LICENSED | {"keywords": ["paper", "demo"]})
    with store.uow.transaction() as session:
        published = publish_run(session, store.blobs, run.run_id, to=tmp_path)
    assert published.path == (tmp_path / f"run-{run.seq}-v1.zip").resolve()
    assert published.sha256 == hashlib.sha256(published.path.read_bytes()).hexdigest()
    bag_dir = unpack(published.path, tmp_path / "out")
    bag = bagit.Bag(str(bag_dir))
    bag.validate()  # every payload file against manifest-sha256.txt
    assert "sha256" in bag.algorithms
    assert bag.info["External-Identifier"] == f"urn:uuid:{published.id}"
    data = bag_dir / "data"
    assert (data / "inputs" / "in.txt").read_text() == "abc"
    assert (data / "outputs" / "doubled.txt").read_text() == "abcabc"
    assert (data / "scripts" / "double.py").read_text() == ANNOTATED
    model = json.loads((data / "provenance" / "yw-model.json").read_text())
    assert [p["name"] for p in model["programs"]] == ["double"]
    prov = json.loads((data / "provenance" / "prov.json").read_text())
    assert list(prov["activity"]) == [f"uuid:{run.run_id}"]

    crate = ROCrate(data)
    assert crate.root_dataset["name"] == "Doubling"
    assert crate.root_dataset["license"] == "CC-BY-4.0"
    assert crate.root_dataset["identifier"] == f"urn:uuid:{published.id}"
    (action,) = [e for e in crate.get_entities() if e.type == "CreateAction"]
    assert action["instrument"].id == "scripts/double.py"
    assert [e.id for e in action["object"]] == ["inputs/in.txt"]
    assert [e.id for e in action["result"]] == ["outputs/doubled.txt"]
    digest = hashlib.sha256(b"abcabc").hexdigest()
    assert crate.dereference("outputs/doubled.txt")["sha256"] == digest
    assert action["agent"][0]["name"] == "Ada Lovelace"


def test_publishing_twice_refuses_unless_update_which_links_versions(
    store: RunStore, run: RecordResult, tmp_path: Path
) -> None:
    with store.uow.transaction() as session:
        put_metadata(session, run.seq, LICENSED)
        first = publish_run(session, store.blobs, run.seq, to=tmp_path)
    with store.uow.transaction() as session, pytest.raises(Conflict, match="--update"):
        publish_run(session, store.blobs, run.seq, to=tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.zip")) == [f"run-{run.seq}-v1.zip"]
    with store.uow.transaction() as session:
        second = publish_run(session, store.blobs, run.seq, to=tmp_path, update=True)
    assert (second.version, second.previous_id) == (2, first.id)
    assert second.id != first.id and second.path.name == f"run-{run.seq}-v2.zip"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "must be a mapping"),
        ({"titel": "x"}, "unknown metadata field 'titel'"),
        ({"creators": "Ada"}, "must be a list of names"),
        ({"creators": ["Ada", ""]}, "must be a list of names"),
        ({"title": 3}, "must be text"),
    ],
)
def test_bad_metadata_is_refused_and_keeps_the_old(
    store: RunStore, run: RecordResult, document: object, message: str
) -> None:
    with store.uow.transaction() as session:
        put_metadata(session, run.seq, {"title": "Kept"})
    with store.uow.transaction() as session, pytest.raises(Invalid, match=message):
        put_metadata(session, run.seq, document)
    with store.uow.transaction() as session:
        assert get_metadata(session, run.seq)["title"] == "Kept"


def test_no_licence_no_publication_and_no_partial_file(
    store: RunStore, run: RecordResult, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with store.uow.transaction() as session, pytest.raises(Invalid, match="no license"):
        publish_run(session, store.blobs, run.seq, to=out)
    with store.uow.transaction() as session:
        put_metadata(session, run.seq, LICENSED)
    with store.uow.transaction() as session, pytest.raises(Invalid, match="no folder"):
        publish_run(session, store.blobs, run.seq, to=out / "missing" / "x.zip")
    assert list(out.iterdir()) == []
    with store.uow.transaction() as session:  # the refusals recorded no publication
        assert publish_run(session, store.blobs, run.seq, to=out).version == 1


def test_a_file_outside_the_run_s_folder_cannot_climb_out(
    store: RunStore, run_script: Runner, project: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere" / "data.txt"
    outside.parent.mkdir()
    outside.write_text("far")
    result = run_script(
        "import sys, pathlib\n"
        "pathlib.Path('copy.txt').write_text(pathlib.Path(sys.argv[1]).read_text())\n",
        str(outside),
        name="copy.py",
    )
    with store.uow.transaction() as session:
        put_metadata(session, result.seq, LICENSED)
        published = publish_run(session, store.blobs, result.seq, to=tmp_path)
    with zipfile.ZipFile(published.path) as archive:
        names = archive.namelist()
    assert all(part != ".." for name in names for part in name.split("/"))
    digest = hashlib.sha256(b"far").hexdigest()[:12]
    assert f"run-{result.seq}-v1/data/inputs/external/{digest}-data.txt" in names


def test_another_organisation_s_run_is_not_found(store: RunStore, tmp_path: Path) -> None:
    with store.uow.transaction() as session:
        mine, theirs = make_org(session), make_org(session)
        activity = record_activity(
            session, organisation_id=theirs.id, kind="upload", generated=["a" * 64]
        )
        run_id, mine_id = activity.id, mine.id
    with store.uow.transaction() as session, pytest.raises(RunNotFound):
        publish_run(session, store.blobs, run_id, to=tmp_path, scope=Scope((mine_id,)))
    with store.uow.transaction() as session, pytest.raises(RunNotFound):
        put_metadata(session, run_id, LICENSED, scope=Scope((mine_id,)))
