"""Fixtures of the processing tests: the test plugin's services registered for a test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cairn.plugins import get_plugin_manager
from tests.processing import plugin_services


@pytest.fixture
def test_services() -> Iterator[None]:
    """Register ``plugin_services`` (crashing, sleeping, ... services) for one test."""
    manager = get_plugin_manager()
    manager.register(plugin_services, name="processing-test-services")
    yield
    manager.unregister(name="processing-test-services")
