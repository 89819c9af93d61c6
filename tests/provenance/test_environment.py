"""The environment a run records: installed packages read from the metadata headers only."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from cairn.provenance._environment import _name_version, installed_packages


def test_installed_packages_match_the_full_metadata_parse() -> None:
    expected = {
        f"{dist.metadata['Name']}=={dist.version}"
        for dist in metadata.distributions()
        if dist.metadata["Name"]
    }
    found = installed_packages()
    assert set(found) == expected and len(found) == len(expected)
    assert found == sorted(found, key=str.lower)
    assert any(p.startswith("SQLAlchemy==") for p in found)


def test_headers_end_at_the_first_blank_line(tmp_path: Path) -> None:
    info = tmp_path / "odd-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: odd\nSummary: x\n\nVersion: 9.9 (in the description)\n"
    )
    (dist,) = metadata.distributions(path=[str(tmp_path)])
    assert _name_version(dist) == ("odd", "")
    # What the full parser says too (the standard library's and the importlib_metadata
    # backport's, which another package may have put first on sys.meta_path).
    assert dist.metadata["Name"] == "odd" and "Version" not in dist.metadata
    (info / "METADATA").write_text("Name: odd\nVersion: 1.0\nName: other\n")
    assert _name_version(dist) == ("odd", "1.0")
    (info / "METADATA").write_text("")
    assert _name_version(dist) is None
