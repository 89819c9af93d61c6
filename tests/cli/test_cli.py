"""The `cairn` command in-process (CliRunner): help, clear errors, and local admin work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cairn.blobs import open_blob_store
from cairn.cli.main import app
from cairn.config import get_settings

runner = CliRunner()


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """CAIRN_DATA_DIR on a fresh folder, with the settings cache cleared around the test."""
    monkeypatch.setenv("CAIRN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CAIRN_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CAIRN_DATABASE_URL", raising=False)
    monkeypatch.delenv("CAIRN_BLOB_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


@pytest.mark.parametrize(
    "args", [[], ["admin"], ["workspace"], ["orgs"], ["workspace", "upload", "--help"]]
)
def test_help_explains_each_command(args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--help"] if args[-1:] != ["--help"] else args)
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_bad_settings_are_one_clear_line(local: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_PORT", "eighty")
    result = runner.invoke(app, ["admin", "migrate"])
    assert result.exit_code == 2
    assert "Invalid settings" in result.output and "port" in result.output
    assert "Traceback" not in result.output


def test_commands_needing_login_say_so(local: Path) -> None:
    result = runner.invoke(app, ["whoami"])
    assert result.exit_code == 3 and "cairn login" in result.output


def test_check_reports_a_missing_blob(local: Path) -> None:
    seeded = runner.invoke(app, ["admin", "seed-demo", "--json"])
    assert seeded.exit_code == 0, seeded.output
    clean = runner.invoke(app, ["check", "--json"])
    assert clean.exit_code == 0 and json.loads(clean.stdout)["ok"] is True
    store = open_blob_store(str(local / "blobs"))
    victim = next(iter(store.iter_hashes()))
    store.delete(victim)
    broken = runner.invoke(app, ["check", "--json"])
    assert broken.exit_code == 1
    assert json.loads(broken.stdout)["missing"] == [victim]


def test_gc_deletes_an_old_orphan_and_nothing_else(local: Path) -> None:
    seeded = runner.invoke(app, ["admin", "seed-demo", "--json"])
    assert seeded.exit_code == 0, seeded.output
    store = open_blob_store(str(local / "blobs"))
    demo_blobs = set(store.iter_hashes())
    orphan = store.put(b"orphan").sha256
    young = store.put(b"an upload in flight").sha256
    path = store.local_path(orphan)
    assert path is not None
    two_hours_ago = time.time() - 2 * 3600
    os.utime(path, (two_hours_ago, two_hours_ago))

    dry = runner.invoke(app, ["admin", "gc", "--grace-minutes", "1", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True
    assert (planned["deleted"], planned["kept_recent"]) == ([orphan], [young])
    assert set(store.iter_hashes()) == demo_blobs | {orphan, young}

    done = runner.invoke(app, ["admin", "gc", "--grace-minutes", "1", "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["dry_run"] is False
    assert (report["deleted"], report["bytes_freed"]) == ([orphan], len(b"orphan"))
    assert set(store.iter_hashes()) == demo_blobs | {young}

    checked = runner.invoke(app, ["check", "--json"])
    assert checked.exit_code == 0, checked.output
    verdict = json.loads(checked.stdout)
    assert verdict["ok"] is True and verdict["unreferenced"] == [young]

    no_grace = runner.invoke(app, ["admin", "gc", "--grace-minutes", "0", "--json"])
    assert json.loads(no_grace.stdout)["deleted"] == [young]
    checked = runner.invoke(app, ["check", "--json"])
    verdict = json.loads(checked.stdout)
    assert verdict["ok"] is True and verdict["unreferenced"] == []
    assert set(store.iter_hashes()) == demo_blobs
    assert runner.invoke(app, ["admin", "gc", "--grace-minutes", "-1"]).exit_code == 2


def test_gc_without_json_prints_a_summary(local: Path) -> None:
    result = runner.invoke(app, ["admin", "gc", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Garbage collection (dry run)" in result.stdout and "blobs to delete" in result.stdout


def test_gc_refuses_an_empty_database_facing_a_full_store(local: Path) -> None:
    assert runner.invoke(app, ["admin", "migrate"]).exit_code == 0
    store = open_blob_store(str(local / "blobs"))
    ref = store.put(b"a blob some other database references")
    refused = runner.invoke(app, ["admin", "gc", "--grace-minutes", "0"])
    assert refused.exit_code == 5 and "--force" in refused.output
    assert store.exists(ref.sha256)
    forced = runner.invoke(app, ["admin", "gc", "--grace-minutes", "0", "--force", "--json"])
    assert forced.exit_code == 0 and json.loads(forced.stdout)["deleted"] == [ref.sha256]


def test_gc_removes_stale_upload_leftovers(local: Path) -> None:
    assert runner.invoke(app, ["admin", "seed-demo"]).exit_code == 0
    leftover = local / "tmp" / "stage-crashed"
    leftover.mkdir(parents=True)
    (leftover / "half.tex").write_bytes(b"\\documentclass")
    then = time.time() - 7200
    os.utime(leftover, (then, then))
    done = runner.invoke(app, ["admin", "gc", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["temporary_removed"] == ["stage-crashed"]
    assert not leftover.exists()


def test_check_reports_scratch_leftovers_and_deletes_nothing(local: Path) -> None:
    assert runner.invoke(app, ["admin", "migrate"]).exit_code == 0
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    work = local / "tmp"
    work.mkdir()
    orphan = work / f"stage-{child.pid}-1-abcdef"
    orphan.mkdir()
    (orphan / "a.txt").write_bytes(b"12345")
    (work / "package-old.tar.gz").write_bytes(b"123")
    result = runner.invoke(app, ["check", "--json"])
    assert result.exit_code == 0, result.output  # garbage, not damage
    report = json.loads(result.stdout)
    assert [item["name"] for item in report["leftovers"]] == ["package-old.tar.gz", orphan.name]
    assert [item["owner_pid"] for item in report["leftovers"]] == [None, child.pid]
    assert report["leftover_bytes"] == 8
    human = runner.invoke(app, ["check"])
    assert "2 scratch leftovers" in human.output and orphan.name in human.output
    assert sorted(os.listdir(work)) == ["package-old.tar.gz", orphan.name]


def test_version_option_prints_the_package_version() -> None:
    import cairn

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"cairn {cairn.__version__}\n"


# rasterio 1.4's from_origin multiplies affine transforms with `*`, which affine 3.1 flags.
@pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")
def test_admin_registers_and_lists_dem_sources(local: Path, tmp_path: Path) -> None:
    """A real GeoTIFF (written with rasterio) becomes a DEM source for Elevation."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    dem = tmp_path / "hills.tif"
    with rasterio.open(
        dem, "w", driver="GTiff", width=4, height=2, count=1, dtype="float32",
        crs="EPSG:4326", transform=from_origin(-4.5, 56.0, 0.25, 0.25),
    ) as dataset:  # fmt: skip
        dataset.write(np.ones((2, 4), dtype="float32"), 1)
    added = runner.invoke(app, ["admin", "add-dem", str(dem), "--name", "Hills", "--json"])
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["bounds"] == [-4.5, 55.5, -3.5, 56.0]
    again = runner.invoke(app, ["admin", "add-dem", str(dem), "--name", "Hills"])
    assert again.exit_code != 0 and "registered already" in again.output
    missing = runner.invoke(app, ["admin", "add-dem", str(tmp_path / "none.tif")])
    assert missing.exit_code != 0 and "no such file" in missing.output
    listed = runner.invoke(app, ["admin", "list-dems", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(s["name"], s["path"]) for s in json.loads(listed.stdout)] == [("Hills", str(dem))]
