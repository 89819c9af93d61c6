"""``Settings.xml_preload``: a restarted server parses the stored documents in the background,
so the first query after the restart finds its tree parsed (issue #18, reopen)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from cairn.api import create_app
from cairn.config import Settings
from tests.xmldb.conftest import PERSONS, PETS, Api


def test_a_restarted_server_parses_the_stored_documents_before_the_first_query(
    api: Api, settings: Settings
) -> None:
    api.load("persons", PERSONS)
    api.load("pets", PETS, collection="animals")
    restarted = create_app(settings.model_copy(update={"xml_preload": True}))
    try:
        with TestClient(restarted) as client:
            deadline = time.monotonic() + 60
            while True:  # the parse runs in the background: nothing was asked of it yet
                xml = getattr(restarted.state, "xmldb", None)
                if xml is not None and xml.trees.parses == 2:
                    break
                assert time.monotonic() < deadline, "the stored documents were not preloaded"
                time.sleep(0.05)
            reads = xml.snapshot_reads
            again = Api(client, api.member)
            assert again.lite('collection("animals")/pets/cat/text()') == "Tom"
            assert again.lite('count(doc("persons")//person)') == "5"
            assert xml.trees.parses == 2  # answered from the preloaded trees, not parsed again
            assert xml.snapshot_reads == reads  # and from the preloaded snapshot
    finally:
        restarted.state.engine.dispose()


def test_without_the_setting_nothing_is_parsed_before_a_query(api: Api, settings: Settings) -> None:
    api.load("pets", PETS)
    restarted = create_app(settings)  # the XML server, made with the preload, is not made
    try:
        with TestClient(restarted) as client:
            assert getattr(restarted.state, "xmldb", None) is None
            assert Api(client, api.member).lite("doc('pets')/pets/dog/text()") == "Sam"
            assert restarted.state.xmldb.trees.parses == 1
    finally:
        restarted.state.engine.dispose()
