"""Fixtures for the upload processor: the hostile corpus (built once) and a runner."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cairn.workspaces._limits import DEFAULT_LIMITS, Limits
from cairn.workspaces._unpack import ProcessedUpload, process_upload

from .hostile import CORPUS

Corpus = Callable[[str], Path]
Run = Callable[..., ProcessedUpload]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """``corpus(name)``: the path of that corpus upload, built on first use."""
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = CORPUS[name](tmp_path_factory.mktemp(name))
        return built[name]

    return get


def snapshot(root: Path, skip: Path) -> set[str]:
    """Every path under ``root`` except those under ``skip``, links not followed."""
    found: set[str] = set()
    for folder, dirs, files in os.walk(root):
        if Path(folder) == skip or skip in Path(folder).parents:
            continue
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(folder, name), root))
    return found


@pytest.fixture
def run(tmp_path: Path) -> Run:
    """``run(source, **kwargs)``: process ``source`` into a fresh staging folder in a box.

    The box holds only a link to the source and the staging folder; after processing, nothing
    in the test's temporary folder may have changed outside staging, and staging may hold only
    regular files and folders.
    """
    counter = 0

    def go(
        source: Path,
        filename: str | None = None,
        *,
        limits: Limits = DEFAULT_LIMITS,
        **kwargs: object,
    ) -> ProcessedUpload:
        nonlocal counter
        counter += 1
        box = tmp_path / f"box{counter}"
        (box / "in").mkdir(parents=True)
        local = box / "in" / "upload"
        if source.stat().st_dev == box.stat().st_dev:
            os.link(source, local)  # the bombs need not be copied
        else:
            local.write_bytes(source.read_bytes())
        staging = box / "staging"
        staging.mkdir()
        before = snapshot(tmp_path, staging)
        result = process_upload(
            local,
            source.name if filename is None else filename,
            staging=staging,
            limits=limits,
            **kwargs,  # type: ignore[arg-type]
        )
        after = snapshot(tmp_path, staging)
        assert after == before, f"written outside staging: {sorted(after - before)}"
        for root, _dirs, files in os.walk(staging):
            for name in files:
                path = Path(root, name)
                assert path.is_file() and not path.is_symlink()
        return result

    return go
