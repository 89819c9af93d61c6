"""A DOI-minting plugin for tests and demos: ``CAIRN_PLUGINS=cairn.provenance.test_doi``.

It mints ``10.5072/cairn.<publication id>`` (10.5072 is DataCite's test prefix, never
resolvable) without any network, so the ``mint_doi`` hook can be seen working end to end. A real
minter (DataCite, Zenodo) is a plugin of the same shape that calls its registry instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from cairn.hookspecs import hookimpl

__all__ = ["TEST_PREFIX", "mint_doi"]

TEST_PREFIX = "10.5072"


@hookimpl
def mint_doi(publication_id: str, metadata: Mapping[str, object]) -> str | None:
    return f"{TEST_PREFIX}/cairn.{publication_id}"
