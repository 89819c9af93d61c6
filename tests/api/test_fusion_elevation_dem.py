"""Elevation on an administrator's DEM source: a real GeoTIFF written here with rasterio is
registered (as `cairn admin add-dem` does), and the execution's GeoTIFF holds exactly the
source's pixels inside the region, on SQLite and PostgreSQL with real workers.

Expected values come from the test's own array (sliced by the output's pixel offset), not
from a run.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from fastapi.testclient import TestClient
from rasterio.transform import from_origin
from sqlalchemy.orm import Session

from cairn.config import Settings
from cairn.db import make_engine, make_sessionmaker, session_scope
from cairn.errors import Conflict, Invalid
from cairn.processing import service
from tests.factories import Member
from tests.processing.fusion_helpers import (
    ELEVATION,
    create_process,
    execute,
    outputs,
    upload_data,
)

pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")

# 50 x 30 pixels of 0.01 degrees over (-4.5..-4.0, 55.7..56.0): holds the Glasgow test square.
WEST, NORTH, STEP, WIDTH, HEIGHT = -4.5, 56.0, 0.01, 50, 30
NODATA = -32768


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member(credits=5)


@pytest.fixture
def admin(settings: Settings) -> Iterator[Session]:
    """A session on the app's database, as `cairn admin` opens one."""
    engine = make_engine(settings)
    with session_scope(make_sessionmaker(engine)) as session:
        yield session
    engine.dispose()


def _heights() -> np.ndarray:
    heights = (np.arange(WIDTH * HEIGHT, dtype="int16") * 3).reshape(HEIGHT, WIDTH)
    heights[12, 25] = NODATA  # a hole inside the region stays a hole
    return heights


def _dem(path: Path, *, crs: str | None = "EPSG:4326") -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=WIDTH,
        height=HEIGHT,
        count=1,
        dtype="int16",
        crs=crs,
        transform=from_origin(WEST, NORTH, STEP, STEP),
        nodata=NODATA,
    ) as dataset:
        dataset.write(_heights(), 1)
    return path


def _elevation(client: TestClient, member: Member) -> tuple[dict[str, object], list[bytes]]:
    process = create_process(client, member, upload_data(client, member), service_id=ELEVATION)
    execution = execute(client, member, process["id"])
    found = outputs(client, member, str(execution["id"])) if execution["success"] else {}
    return execution, found.get("Elevation", [])


def test_elevation_clips_the_registered_source_to_its_own_pixels(
    client: TestClient, member: Member, admin: Session, tmp_path: Path
) -> None:
    source = service.add_dem_source(admin, path=_dem(tmp_path / "lowlands.tif"), name="Lowlands")
    assert source.crs == "EPSG:4326"
    assert [source.west, source.south, source.east, source.north] == pytest.approx(
        [-4.5, 55.7, -4.0, 56.0]
    )
    admin.commit()
    execution, (tif, csv) = _elevation(client, member)
    assert execution["success"] is True, execution
    with rasterio.open(io.BytesIO(tif)) as clipped:
        values = clipped.read(1)
        assert clipped.tags()["source"] == "DEM source 'Lowlands'"
        assert clipped.res == pytest.approx((STEP, STEP)) and clipped.nodata == NODATA
        column = round((clipped.transform.c - WEST) / STEP)
        row = round((NORTH - clipped.transform.f) / STEP)
    expected = _heights()[row : row + values.shape[0], column : column + values.shape[1]]
    inside = values != NODATA
    assert 40 <= inside.sum() <= 60  # the 0.1 x 0.05 degree square holds about 50 pixels
    assert np.array_equal(values[inside], expected[inside])
    assert (expected == NODATA).any() and not (values[expected == NODATA] != NODATA).any()
    rows = dict(line.split(",") for line in csv.decode().splitlines()[1:])
    assert int(rows["pixels"]) == int(inside.sum())
    assert float(rows["minimum"]) == expected[inside].min()


def test_a_region_outside_every_source_fails_saying_so(
    client: TestClient, member: Member, admin: Session, tmp_path: Path
) -> None:
    dem = _dem(tmp_path / "far.tif")
    with rasterio.open(dem, "r+") as dataset:  # the same grid, moved to the Alps
        dataset.transform = from_origin(7.0, 46.5, STEP, STEP)
    service.add_dem_source(admin, path=dem, name="Alps")
    admin.commit()
    execution, _ = _elevation(client, member)
    assert execution["success"] is False
    assert "outside every registered DEM source (Alps)" in str(execution["abort_reason"])


def test_without_a_source_elevation_samples_the_synthetic_terrain(
    client: TestClient, member: Member
) -> None:
    execution, (tif, _) = _elevation(client, member)
    assert execution["success"] is True, execution
    with rasterio.open(io.BytesIO(tif)) as synthetic:
        assert "SYNTHETIC" in synthetic.tags()["source"]


def test_bad_dem_sources_are_refused(admin: Session, tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="no such file"):
        service.add_dem_source(admin, path=tmp_path / "missing.tif")
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    with pytest.raises(Invalid, match="not a raster GDAL can read"):
        service.add_dem_source(admin, path=text)
    with pytest.raises(Invalid, match="has no CRS"):
        service.add_dem_source(admin, path=_dem(tmp_path / "nowhere.tif", crs=None))
    service.add_dem_source(admin, path=_dem(tmp_path / "first.tif"), name="Twice")
    with pytest.raises(Conflict, match="registered already"):
        service.add_dem_source(admin, path=_dem(tmp_path / "second.tif"), name="Twice")
    assert [s["name"] for s in service.dem_sources(admin)] == ["Twice"]
