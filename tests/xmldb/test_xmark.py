"""Every benchmark query gives through cairn exactly what plain saxonche gives on the same
generated document (the benchmark's correctness oracle, on a small document)."""

from __future__ import annotations

import pytest

from cairn.xmldb import _engine as engine
from cairn.xmldb._xmark import QUERIES, for_document, generate
from tests.xmldb.conftest import Api

DOCUMENT = generate(0.004, seed=7)


def _plain_saxon(query: str) -> str:
    return engine.on_saxon_thread(lambda: _run_plain(query))


def _run_plain(query: str) -> str:
    proc = engine.processor()
    doc = proc.parse_xml(xml_text=DOCUMENT)
    xq = proc.new_xquery_processor()
    xq.set_context(xdm_item=doc)
    xq.set_query_content(query)
    return engine.serialize_sequence(xq.run_query_to_value())


def test_the_generator_is_deterministic() -> None:
    assert generate(0.004, seed=7) == DOCUMENT
    assert generate(0.004, seed=8) != DOCUMENT


@pytest.fixture
def auction(api: Api) -> Api:
    api.load("auction", DOCUMENT)
    return api


def test_xmark_results_equal_plain_saxon(auction: Api) -> None:
    for name, query in QUERIES.items():
        expected = _plain_saxon(query)
        assert expected, f"{name} is empty on the test document; enlarge it"
        assert auction.lite(for_document(query)) == expected, name
