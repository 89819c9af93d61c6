"""The built-in services that landed after Elevation and Region statistics, run through `/fusion`
on real workers on SQLite and PostgreSQL: Raster statistics and the SYNTHETIC Sentinel-2 demo.

Expected figures are computed here with numpy from the test's own raster, not copied from a run.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from cairn.processing.builtin import CLOUD_CLASSIFICATION, RASTER_STATISTICS
from tests.factories import Member
from tests.processing.fusion_helpers import (
    GLASGOW,
    create_process,
    execute,
    org_path,
    outputs,
    upload_data,
)

# rasterio 1.4 multiplies affine transforms with `*` inside MemoryFile, which affine 3.1 flags.
# A PNG preview read back has no georeference, which rasterio warns about.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning"),
    pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning"),
]

# A 20 x 10 pixel raster over the Glasgow test square (-4.3..-4.2, 55.85..55.9), two bands.
WEST, NORTH, STEP = -4.3, 55.9, 0.005
NODATA = -1.0


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member(credits=10)


def _bands() -> np.ndarray:
    first = np.arange(200, dtype="float32").reshape(10, 20)
    first[2, 3] = NODATA  # inside the region: left out as nodata
    second = (first % 7) * 1.5
    second[2, 3] = NODATA
    return np.stack([first, second])


def _geotiff(bands: np.ndarray, crs: str = "EPSG:4326") -> bytes:
    profile = {
        "driver": "GTiff",
        "width": 20,
        "height": 10,
        "count": 2,
        "dtype": "float32",
        "crs": crs,
        "transform": from_origin(WEST, NORTH, STEP, STEP),
        "nodata": NODATA,
    }
    with MemoryFile() as memory:
        with memory.open(**profile) as dataset:
            dataset.write(bands)
        return bytes(memory.read())


def _region(west: float, east: float) -> bytes:
    ring = [[west, 55.85], [east, 55.85], [east, 55.9], [west, 55.9], [west, 55.85]]
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    return json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()


def _table(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode())))


def _raster_run(
    client: TestClient, member: Member, raster: bytes, region: bytes, bins: str = "4"
) -> dict[str, Any]:
    raster_id = upload_data(client, member, raster, file_name="r.tif", file_type="GeoTIFF")
    region_id = upload_data(client, member, region)
    process = create_process(
        client,
        member,
        [raster_id, region_id],
        service_id=RASTER_STATISTICS.id,
        options=[{"name": "bins", "value": bins}],
    )
    return execute(client, member, process["id"])


def test_raster_statistics_measures_each_band_within_the_region(
    client: TestClient, member: Member
) -> None:
    # The left half: pixel columns 0-9 have their centres inside.
    execution = _raster_run(client, member, _geotiff(_bands()), _region(-4.3, -4.25))
    assert execution["success"] is True, execution
    (statistics, histogram) = outputs(client, member, execution["id"])["Raster statistics"]
    rows = _table(statistics)
    assert [r["band"] for r in rows] == ["band1", "band2"]
    for row, band in zip(rows, _bands(), strict=True):
        inside = band[:, :10]
        valid = inside[inside != NODATA].astype("float64")
        assert int(row["pixels"]) == valid.size == 99
        for name, expected in (
            ("minimum", valid.min()),
            ("maximum", valid.max()),
            ("mean", valid.mean()),
            ("sd", valid.std()),
            ("median", np.median(valid)),
        ):
            assert float(row[name]) == pytest.approx(expected, rel=1e-5), name
    bins = [r for r in _table(histogram) if r["band"] == "band1"]
    assert len(bins) == 4
    counts, edges = np.histogram(_bands()[0][:, :10][_bands()[0][:, :10] != NODATA], bins=4)
    assert [int(b["count"]) for b in bins] == counts.tolist()
    assert float(bins[0]["lower"]) == pytest.approx(edges[0])
    assert float(bins[-1]["upper"]) == pytest.approx(edges[-1])


def test_raster_statistics_reprojects_the_region_to_the_rasters_crs(
    client: TestClient, member: Member
) -> None:
    """A raster in Web Mercator: the WGS84 region is transformed, not compared as numbers."""
    bands = _bands()
    with MemoryFile(_geotiff(bands)) as source, source.open() as dataset:
        from rasterio.warp import calculate_default_transform, reproject

        transform, width, height = calculate_default_transform(
            dataset.crs, "EPSG:3857", dataset.width, dataset.height, *dataset.bounds
        )
        target = np.full((2, height, width), NODATA, dtype="float32")
        reproject(
            bands,
            target,
            src_transform=dataset.transform,
            src_crs=dataset.crs,
            dst_transform=transform,
            dst_crs="EPSG:3857",
            src_nodata=NODATA,
            dst_nodata=NODATA,
        )
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 2,
        "dtype": "float32",
        "crs": "EPSG:3857",
        "transform": transform,
        "nodata": NODATA,
    }
    with MemoryFile() as memory:
        with memory.open(**profile) as out:
            out.write(target)
        mercator = bytes(memory.read())
    execution = _raster_run(client, member, mercator, _region(-4.3, -4.25))
    assert execution["success"] is True, execution
    first = _table(outputs(client, member, execution["id"])["Raster statistics"][0])[0]
    # Resampled, so near (not equal to) the WGS84 figures; the right half would be ~10 more.
    assert 80 <= int(first["pixels"]) <= 120
    assert float(first["mean"]) == pytest.approx(94.5, abs=3)


def test_raster_statistics_bad_input(client: TestClient, member: Member) -> None:
    # A region that misses the raster: the execution fails with the reason.
    far = _raster_run(client, member, _geotiff(_bands()), _region(10.0, 10.1))
    assert far["success"] is False
    assert "does not overlap the raster" in far["abort_reason"]
    # A GeoJSON where the raster goes is refused at create; so is an out-of-range option.
    region_id = upload_data(client, member, _region(-4.3, -4.25))
    template = client.get(
        f"{org_path(member)}/processes/new",
        params={"service_id": RASTER_STATISTICS.id},
        headers=member.headers,
    ).json()["model"]
    body = {f"Process[{k}]": v for k, v in template.items() if v is not None}
    body["Process[name]"] = "Bad"
    body["Process[inputs]"] = [{**i, "id": region_id} for i in template["inputs"]]
    wrong = client.post(f"{org_path(member)}/processes", headers=member.headers, json=body)
    assert wrong.status_code == 422
    assert wrong.json()["error_message"] == "Input 1 takes GeoTIFF, not GeoJSON ('Region')."
    raster_id = upload_data(
        client, member, _geotiff(_bands()), file_name="r.tif", file_type="GeoTIFF"
    )
    body["Process[inputs]"] = [
        {**template["inputs"][0], "id": raster_id},
        {**template["inputs"][1], "id": region_id},
    ]
    body["Process[options]"] = [{"name": "bins", "value": "0"}]
    bins = client.post(f"{org_path(member)}/processes", headers=member.headers, json=body)
    assert bins.status_code == 422
    assert bins.json()["error_message"] == "Option 'bins' must be at least 1."


def _cloud_run(client: TestClient, member: Member, options: list[dict[str, Any]]) -> dict[str, Any]:
    region_id = upload_data(client, member, json.dumps(GLASGOW).encode())
    process = create_process(
        client, member, region_id, service_id=CLOUD_CLASSIFICATION.id, options=options
    )
    return execute(client, member, process["id"])


HISTORIC = [
    {"name": "latest_date", "value": "false"},
    {"name": "start_date", "value": "2021-03-27T00:00:00Z"},
]


def test_the_sentinel2_demo_classifies_synthetic_imagery_with_aggregated_statistics(
    client: TestClient, member: Member
) -> None:
    execution = _cloud_run(client, member, HISTORIC)
    assert execution["success"] is True, execution
    found = outputs(client, member, execution["id"])
    (tif,) = found["Sentinel-2 Cloud Classification"]
    (statistics,) = found["Statistics Aggregator"]
    with MemoryFile(tif) as memory, memory.open() as dataset:
        assert dataset.count == 1 and dataset.dtypes == ("uint8",) and dataset.nodata == 255
        assert "SYNTHETIC" in dataset.tags()["source"]
        assert dataset.tags()["acquisition_date"] == "2021-03-27"
        classes = dataset.read(1)
    values, counts = np.unique(classes[classes != 255], return_counts=True)
    assert set(values.tolist()) <= {0, 1, 2, 3}
    table = {int(r["class"]): int(r["pixels"]) for r in _table(statistics)}
    counted = dict(zip(values.tolist(), counts.tolist(), strict=True))
    assert table == {v: counted.get(v, 0) for v in range(4)}
    # The file's selector (what the Detailed Example reads) has a 10-bin histogram of classes.
    base = org_path(member)
    components = client.get(
        f"{base}/process_executions/{execution['id']}/process_service_executions",
        headers=member.headers,
    ).json()["list"]
    (output_id,) = components[0]["outputs"]
    (file,) = client.get(f"{base}/data/{output_id}/files", headers=member.headers).json()["list"]
    (selector,) = file["selectors"]
    assert len(selector["histogram"]) == 10
    assert selector["histogram"][0] == table[0] and selector["histogram"][9] == table[3]


def test_the_sentinel2_demo_depends_on_the_date_and_refuses_a_missing_one(
    client: TestClient, member: Member
) -> None:
    first = outputs(client, member, _cloud_run(client, member, HISTORIC)["id"])
    again = outputs(client, member, _cloud_run(client, member, HISTORIC)["id"])
    other = _cloud_run(
        client, member, [HISTORIC[0], {"name": "start_date", "value": "2021-04-01T00:00:00Z"}]
    )
    later = outputs(client, member, other["id"])
    name = "Sentinel-2 Cloud Classification"

    def classes(content: bytes) -> np.ndarray:
        with MemoryFile(content) as memory, memory.open() as dataset:
            return dataset.read(1)

    assert np.array_equal(classes(first[name][0]), classes(again[name][0]))  # deterministic
    assert not np.array_equal(classes(first[name][0]), classes(later[name][0]))
    missing = _cloud_run(client, member, [HISTORIC[0]])
    assert missing["success"] is False
    assert "give start_date" in missing["abort_reason"]
    bad = upload_data(client, member, json.dumps(GLASGOW).encode())
    template = client.get(
        f"{org_path(member)}/processes/new",
        params={"service_id": CLOUD_CLASSIFICATION.id},
        headers=member.headers,
    ).json()["model"]
    body = {f"Process[{k}]": v for k, v in template.items() if v is not None}
    body.update(
        {
            "Process[name]": "Bad date",
            "Process[inputs]": [{**i, "id": bad} for i in template["inputs"]],
            "Process[options]": [{"name": "start_date", "value": "27/03/2021"}],
        }
    )
    answer = client.post(f"{org_path(member)}/processes", headers=member.headers, json=body)
    assert answer.status_code == 422
    assert "start_date" in answer.json()["error_message"]


def test_a_region_in_british_national_grid_is_read_in_its_crs(
    client: TestClient, member: Member
) -> None:
    """GeoJSON 2008's `crs` member (the SDK's Lake District file uses EPSG:27700)."""
    square = [
        [250000, 650000],
        [260000, 650000],
        [260000, 660000],
        [250000, 660000],
        [250000, 650000],
    ]
    document = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::27700"}},
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Polygon", "coordinates": [square]},
            }
        ],
    }
    data_id = upload_data(client, member, json.dumps(document).encode())
    (file,) = client.get(f"{org_path(member)}/data/{data_id}/files", headers=member.headers).json()[
        "list"
    ]
    assert file.get("error") is False, file.get("error_message")
    assert file["area"] == pytest.approx(1e8, rel=0.01)  # 10 km x 10 km on the ground
    west, south, east, north = file["bounds"]
    assert -5 < west < east < -4 and 55 < south < north < 56
    document["crs"]["properties"]["name"] = "EPSG:999999"
    unknown = upload_data(client, member, json.dumps(document).encode())
    (failed,) = client.get(
        f"{org_path(member)}/data/{unknown}/files", headers=member.headers
    ).json()["list"]
    assert failed["error"] is True and "unknown CRS" in failed["error_message"]


# --- PNG previews -------------------------------------------------------------------------------


def _preview(client: TestClient, member: Member, data_id: str) -> Any:
    (file,) = client.get(f"{org_path(member)}/data/{data_id}/files", headers=member.headers).json()[
        "list"
    ]
    return client.get(
        f"{org_path(member)}/data/{data_id}/download_file/{file['id']}",
        params={"preview": "True"},
        headers=member.headers,
    )


def test_previews_of_a_raster_and_a_region_are_pngs(client: TestClient, member: Member) -> None:
    raster_id = upload_data(
        client, member, _geotiff(_bands()), file_name="r.tif", file_type="GeoTIFF"
    )
    region_id = upload_data(client, member, _region(-4.3, -4.25))
    for data_id in (raster_id, region_id):
        answer = _preview(client, member, data_id)
        assert answer.status_code == 200, answer.text
        png = client.get(answer.json()["extras"]["url"])
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        with MemoryFile(png.content) as memory, memory.open() as image:
            assert image.driver == "PNG" and image.count == 4
            alpha = image.read(4)
        assert (alpha == 255).any()
    # The raster's preview keeps its shape (20 x 10) and shows the nodata pixel transparent.
    with (
        MemoryFile(
            client.get(_preview(client, member, raster_id).json()["extras"]["url"]).content
        ) as memory,
        memory.open() as image,
    ):
        assert (image.width, image.height) == (20, 10)
        assert image.read(4)[2, 3] == 0


def test_a_file_without_a_preview_says_so(client: TestClient, member: Member) -> None:
    csv_id = upload_data(client, member, b"a,b\n1,2\n", file_name="t.csv", file_type="CSV")
    answer = _preview(client, member, csv_id)
    assert answer.status_code == 404
    assert "no preview" in answer.json()["error_message"]
    # A preview URL serves the preview only: it cannot be turned into the file's own download.
    raster_id = upload_data(
        client, member, _geotiff(_bands()), file_name="r.tif", file_type="GeoTIFF"
    )
    url = _preview(client, member, raster_id).json()["extras"]["url"]
    assert "blob=" in url
    tampered = re.sub(r"blob=[0-9a-f]+", "blob=" + "0" * 64, url)
    assert client.get(tampered).status_code == 403
