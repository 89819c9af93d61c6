"""End to end: the manual's Quick Example through `cairn process` and through `cairn.client`
against a real `cairn serve` (SQLite, local blobs, components in worker processes)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from cairn import client
from tests.e2e.conftest import Server
from tests.processing.fusion_helpers import GLASGOW

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EMAIL, PASSWORD = "mary@example.org", "Fossil-hunter-1823"


@pytest.fixture(scope="module")
def mary(server: Server) -> Server:
    server.cli("admin", "create-org", "--name", "Lyme Lab")
    made = server.cli(
        "admin", "create-user", "--email", EMAIL, "--password", PASSWORD, "--org", "Lyme Lab"
    )
    assert made.returncode == 0, made.stderr
    granted = server.cli("admin", "grant-credits", "--org", "Lyme Lab", "--amount", "10")
    assert granted.returncode == 0, granted.stderr
    assert server.cli("login", "--email", EMAIL, "--password", PASSWORD).returncode == 0
    return server


def _json(server: Server, *args: str) -> object:
    done = server.cli("process", *args, "--json")
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout)


def test_the_cli_starts_waits_downloads_defines_and_restarts(mary: Server, tmp_path: Path) -> None:
    region = tmp_path / "glasgow.json"
    region.write_text(json.dumps(GLASGOW))
    out = tmp_path / "out"
    started = _json(
        mary, "start", "Elevation", "-l", str(region), "-n", "Glasgow heights", "--download",
        str(out),
    )  # fmt: skip
    assert isinstance(started, dict) and started["success"] is True and started["price"] == 1
    tifs = [Path(p) for p in started["files"] if p.endswith(".tif")]
    assert tifs and tifs[0].is_file() and tifs[0].is_relative_to(out / "Glasgow_heights")

    listed = _json(mary, "list")
    assert isinstance(listed, list) and [p["name"] for p in listed] == ["Glasgow heights"]
    assert listed[0]["executions"] == 1

    shown = _json(mary, "display", "Glasgow heights")
    assert isinstance(shown, dict) and shown["execution_ids"] == [started["execution_id"]]
    service = _json(mary, "display", "Elevation")
    assert isinstance(service, dict) and "Elevation" in service["keywords"]

    process_file = tmp_path / "again.yml"
    defined = mary.cli("process", "define", "Glasgow heights", "-o", str(process_file))
    assert defined.returncode == 0, defined.stderr
    document = yaml.safe_load(process_file.read_text())
    assert document["service_name"] == "Elevation"
    assert document["inputs"] == ["Glasgow heights 1"]  # the data item `start` uploaded
    assert document["dispatchers"] == []
    document["process_name"] = "Glasgow again"
    local = {"name": "Local folder", "dispatch_intermediate": False, "options": {"folder": "cli"}}
    document["dispatchers"] = [local]
    process_file.write_text(yaml.safe_dump(document))
    again = _json(mary, "start", str(process_file), "--wait")
    assert isinstance(again, dict) and again["name"] == "Glasgow again" and again["success"]
    dispatched = mary.data_dir / "dispatch" / "cli" / again["execution_id"] / "1_Elevation"
    assert (dispatched / "Elevation" / "elevation.tif").is_file()
    redefined = tmp_path / "redefined.yml"
    assert mary.cli("process", "define", "Glasgow again", "-o", str(redefined)).returncode == 0
    assert yaml.safe_load(redefined.read_text())["dispatchers"] == [local]
    document.update(process_name="Escaping", dispatchers=[{**local, "options": {"folder": "/"}}])
    process_file.write_text(yaml.safe_dump(document))
    refused = mary.cli("process", "start", str(process_file))
    assert refused.returncode != 0 and "must stay inside the dispatch" in refused.stderr

    fetched = _json(mary, "download", "Glasgow again", "-o", str(tmp_path / "fetched"))
    assert isinstance(fetched, list) and any(p.endswith(".tif") for p in fetched)

    missing = mary.cli("process", "display", "No such thing")
    assert missing.returncode != 0 and "No process or service" in missing.stderr


def test_the_quick_example_runs_on_cairn_client(mary: Server, tmp_path: Path) -> None:
    region_file = tmp_path / "glasgow.json"
    region_file.write_text(json.dumps(GLASGOW))
    with client.login(email=EMAIL, password=PASSWORD, api_url=mary.url) as me:
        organisation = next(me.organisations)
        before = organisation.credit
        region = organisation.create_data(
            name="Glasgow (SDK)", file_type="GeoJSON", files=[region_file], wait=True
        )
        service, _ = organisation.find_services(keyword="Elevation")
        assert service is not None
        process = organisation.new_process(name="SDK example", service=service)
        process.update(input_number=1, data=region)
        process.create()
        assert process.price == 1
        process.execute(wait=True)
        execution = next(process.executions)
        assert execution.success is True
        names = []
        for component in execution.components:
            for output in component.outputs:
                for file in output.files:
                    file.download(path=tmp_path / file.file_name, wait=True)
                    names.append(file.file_name)
        assert any(n.endswith(".tif") for n in names)
        assert all((tmp_path / n).stat().st_size > 0 for n in names)
        assert organisation.credit == before - 1
        process.delete()
        region.delete()
        assert organisation.find_data(name="Glasgow (SDK)")[0] is None


LAKES = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"name": "synthetic rectangle over the Lake District (~2,500 km²)"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[-3.4, 54.2], [-2.7, 54.2], [-2.7, 54.7], [-3.4, 54.7], [-3.4, 54.2]]
                ],
            },
        }
    ],
}


# rasterio 1.4's merge multiplies affine transforms with `*`, which affine 3.1 flags.
@pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")
def test_a_split_region_starts_waits_and_downloads_as_a_group(mary: Server, tmp_path: Path) -> None:
    """`cairn process start` runs the region as a group (one progress bar per execution);
    `download` writes the Fusion CLI layout for every member, the metrics CSV and STAC."""
    import csv

    import pystac
    import rasterio
    from rasterio.merge import merge

    region = tmp_path / "lakes.geojson"
    region.write_text(json.dumps(LAKES))
    out = tmp_path / "out"
    started = _json(
        mary, "start", "Demo: Sentinel-2 Cloud Classification", "-l", str(region),
        "-n", "Lakes", "-p", "latest_date=false", "-p", "start_date=2021-03-27T00:00:00Z",
        "--download", str(out),
    )  # fmt: skip
    assert isinstance(started, dict) and started["group_id"]
    members = started["execution_ids"]
    assert len(members) >= 4  # three slices or more, then the aggregator
    last = len(members) - 1
    root = out / "Lakes"
    rasters = sorted(
        root.glob("*/1_Sentinel-2_Cloud_Classification/Output_1_Cloud_classification/*.tif")
    )
    assert [p.parts[-4] for p in rasters] == [str(i) for i in range(last)]
    (statistics,) = root.glob(f"{last}/2_Statistics_Aggregator/Output_1_Class_statistics/*.csv")
    counts = csv.DictReader(io.StringIO(statistics.read_text()))
    pixels = {r["name"]: int(r["pixels"]) for r in counts}
    opened = [rasterio.open(p) for p in rasters]
    try:
        mosaic, _ = merge(opened)
    finally:
        for dataset in opened:
            dataset.close()
    assert pixels["ground"] > 0 and set(mosaic[0].flatten().tolist()) <= {0, 1, 2, 3, 255}

    fetched_to = tmp_path / "fetched"
    fetched = _json(
        mary, "download", "Lakes", "-o", str(fetched_to), "--inputs", "--metrics", "--stac"
    )
    assert isinstance(fetched, list)
    inputs = sorted(
        fetched_to.glob("Lakes/*/1_Sentinel-2_Cloud_Classification/Input_1_*/*.geojson")
    )
    assert len(inputs) == last  # every slice's own region
    with (fetched_to / "Lakes" / "metrics.csv").open() as table:
        rows = list(csv.DictReader(table))
    assert len(rows) == len(members)  # one component per slice, one for the aggregator
    assert {r["execution_id"] for r in rows} == set(members)
    assert all(r["success"] == "True" and float(r["duration_s"]) >= 0 for r in rows)
    collections = sorted(fetched_to.glob("Lakes/*/*/Output_*/.collection.stac"))
    assert len(collections) == len(members)
    for path in collections:
        collection = pystac.Collection.from_file(str(path))
        assert collection.license == "proprietary"
        items = list(collection.get_items())
        assert items and all((path.parent / i.assets["data"].href).is_file() for i in items)

    listed = _json(mary, "list")
    assert isinstance(listed, list)
    (lakes,) = [p for p in listed if p["name"] == "Lakes"]
    assert (lakes["executions"], lakes["groups"]) == (len(members), 1)
    shown = _json(mary, "display", "Lakes")
    assert isinstance(shown, dict)
    (group,) = shown["groups"]
    assert group["group_id"] == started["group_id"]
    assert [e["id"] for e in group["executions"]] == members
    assert [e["aggregator"] for e in group["executions"]] == [False] * last + [True]

    with client.login(email=EMAIL, password=PASSWORD, api_url=mary.url) as me:
        organisation = next(me.organisations)
        process = next(p for p in organisation.processes if p.name == "Lakes")
        newest = next(process.executions)
        _, group = process.find_executions(group_id=newest.group_id)
        assert sorted(e.id for e in group) == sorted(members)
        assert newest.aggregator and newest.group_index == last
