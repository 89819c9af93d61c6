"""Fixtures of the YesWorkflow tests: the seed paper's listings and scripts of our own."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def needs(tool: str) -> pytest.MarkDecorator:
    """Skip, naming the tool, where ``make install`` could not provide it."""
    return pytest.mark.skipif(
        shutil.which(tool) is None, reason=f"{tool} is not installed (make install adds it as root)"
    )


def squeezed(text: str) -> str:
    """``text`` without white space: rich wraps long lines (even inside a path) to the terminal."""
    return "".join(text.split())
