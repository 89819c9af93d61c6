"""The native processing API (``/api/v1/processing``) through cairn's SDK, in-process.

Each test runs on SQLite and PostgreSQL (the ``client`` fixture's database) and drives real
components in worker processes. The manual's Quick Example runs here on ``cairn.client``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rasterio
from fastapi.testclient import TestClient

from cairn import errors
from cairn.client import Client, DataItem, Organisation, connect
from cairn.config import Settings
from tests.factories import Member
from tests.processing.fusion_helpers import GLASGOW

API = "/api/v1/processing/organisations"


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member(credits=5)


def _org(client: TestClient, member: Member) -> Organisation:
    me = connect(member.token, client=Client(http_client=client))
    (org,) = list(me.organisations)
    return org


def _region(tmp_path: Path) -> Path:
    path = tmp_path / "glasgow.json"
    path.write_text(json.dumps(GLASGOW))
    return path


def test_the_quick_example_runs_on_the_sdk(
    client: TestClient, member: Member, tmp_path: Path
) -> None:
    org = _org(client, member)
    assert org.credit == 5
    region = org.create_data(name="Glasgow", files=[_region(tmp_path)], wait=True)
    assert region.file_type == "GeoJSON" and not region.unfulfilled
    (file,) = list(region.files)
    assert file.state == "analysed" and file.polygons == 1 and file.crs == "EPSG:4326"
    assert file.get_stac_item() is not None
    assert region.get_stac_collection()["links"][0]["href"] == ".glasgow.json.stac"

    service, _ = org.find_services(keyword="Elevation")
    assert service is not None and service.name == "Elevation"
    process = org.new_process(name="Elevation of Glasgow", service=service)
    assert process.id is None
    process.update(input_number=1, data=region)
    process.create()
    assert process.id is not None and process.price == 1

    execution = process.execute(wait=True)
    assert execution.success is True and execution.progress == 100
    assert org.credit == 4
    assert next(process.executions).id == execution.id
    (component,) = list(execution.components)
    assert component.name and component.runtime is not None
    assert [e.message for e in component.logs]
    component.download_log_file(tmp_path / "log.csv")
    with (tmp_path / "log.csv").open(newline="") as saved:
        rows = list(csv.reader(saved))
    assert rows[0] == ["logged_at", "message"]
    assert [r[1] for r in rows[1:]] == [e.message for e in component.logs]
    outputs = {f.file_name: f for output in component.outputs for f in output.files}
    assert any(name.endswith(".tif") for name in outputs)
    for name, output in outputs.items():
        output.download(path=tmp_path / name, wait=True)
        assert output.download_complete()
        assert (tmp_path / name).stat().st_size == output.size
    tif = next(tmp_path / n for n in outputs if n.endswith(".tif"))
    with rasterio.open(tif) as raster:
        assert raster.count >= 1

    process.delete()
    region.delete()
    assert org.find_processes(id=process.id)[0] is None
    assert org.find_data(name="Glasgow")[0] is None


def test_find_by_name_is_case_sensitive_and_search_is_not(
    client: TestClient, member: Member
) -> None:
    org = _org(client, member)
    org.create_data(name="Loch Ness")
    org.create_data(name="Lake District")
    assert [d.name for d in org.find_data(name="L")[1]] == ["Loch Ness", "Lake District"]
    assert org.find_data(name="loch")[0] is None
    found, _ = org.find_data(search="DISTRICT")
    assert found is not None and found.name == "Lake District"
    found.update(name="Lakes")
    copy = found.copy("Lakes (copy)")
    assert isinstance(copy, DataItem) and copy.id != found.id
    assert sorted(d.name for d in org.data) == ["Lakes", "Lakes (copy)", "Loch Ness"]


def test_a_process_cannot_change_after_it_ran_but_its_copy_can(
    client: TestClient, member: Member, tmp_path: Path
) -> None:
    org = _org(client, member)
    region = org.create_data(name="Glasgow", files=[_region(tmp_path)], wait=True)
    service, _ = org.find_services(name="Region statistics")
    assert service is not None
    process = org.new_process(name="Stats", service=service)
    process.update(input_number=1, data=region)
    process.create()
    process.execute(wait=True)
    process.update(name="Renamed")  # name and schedule may still change
    assert process.name == "Renamed"
    with pytest.raises(errors.Conflict, match="copy it instead"):
        process.update(output_storage_period=30)
    copy = process.copy()
    assert copy.id is None and copy.name == "Renamed (copy)"
    copy.update(output_storage_period=30)
    copy.create()
    assert copy.id != process.id and copy.output_storage_period == 30


def test_dispatchers_through_the_sdk_as_the_manual_uses_them(
    client: TestClient, member: Member, settings: Settings, tmp_path: Path
) -> None:
    org = _org(client, member)
    region = org.create_data(name="Glasgow", files=[_region(tmp_path)], wait=True)
    service, _ = org.find_services(name="Region statistics")
    assert service is not None
    process = org.new_process(name="Dispatched", service=service)
    offered = {d.name: d for d in process.available_dispatchers}
    assert sorted(offered) == ["AWS S3", "Email", "Local folder", "Storage URL", "Webhook"]
    assert [o.name for o in offered["Local folder"].options] == ["folder", "condition"]
    process.add_dispatcher(number=1)
    process.add_dispatcher(name="Local folder")
    process.update(dispatcher_number=2, option_name="folder", value="sdk")
    process.remove_dispatcher(1)
    with pytest.raises(errors.Invalid, match="no dispatcher 2"):
        process.remove_dispatcher(2)
    with pytest.raises(errors.Invalid, match="No dispatcher 'S3'"):
        process.add_dispatcher(name="S3")
    process.update(input_number=1, data=region)
    process.create()
    (dispatcher,) = process.dispatchers
    assert {o.name: o.value for o in dispatcher.options}["folder"] == "sdk"
    # A stored process changes on the server, which checks the options.
    process.add_dispatcher(name="Local folder")
    with pytest.raises(errors.Invalid, match="must stay inside the dispatch root"):
        process.update(dispatcher_number=2, option_name="folder", value="../out")
    assert len(process.refresh().dispatchers) == 2
    process.remove_dispatcher(2)
    assert len(process.refresh().dispatchers) == 1
    execution = process.execute(wait=True)
    assert settings.dispatch_root is not None
    copied = settings.dispatch_root / "sdk" / execution.id
    assert sorted(p.name for p in copied.rglob("*.*")) == [
        "region_statistics.csv",
        "region_statistics.geojson",
    ]
    with pytest.raises(errors.Conflict, match="dispatchers cannot change"):
        process.remove_dispatcher(1)


def _raw_flow(client: TestClient, member: Member) -> dict[str, Any]:
    """A data item with an analysed file and a created process, through the raw API."""
    base = f"{API}/{member.organisation_id}"
    item = client.post(f"{base}/data", json={"name": "Raw"}, headers=member.headers).json()
    file = client.post(
        f"{base}/data/{item['id']}/files",
        json={"name": "r.geojson", "file_type": "GeoJSON"},
        headers=member.headers,
    )
    assert file.status_code == 201, file.text
    content = f"{base}/data/{item['id']}/files/{file.json()['id']}/content"
    put = client.put(content, content=json.dumps(GLASGOW).encode(), headers=member.headers)
    assert put.status_code == 200, put.text
    return {"base": base, "data": item, "file": file.json(), "content": content}


def test_bad_bodies_and_strangers_get_problems_not_500s(
    client: TestClient, member: Member, make_member: Callable[..., Member]
) -> None:
    flow = _raw_flow(client, member)
    base, data_id = flow["base"], flow["data"]["id"]
    # A second upload of the same file is refused, and the file is untouched.
    again = client.put(flow["content"], content=b"{}", headers=member.headers)
    assert again.status_code == 403
    assert again.headers["content-type"] == "application/problem+json"
    wrong = client.post(f"{base}/data", json={"nom": "x"}, headers=member.headers)
    assert wrong.status_code == 422
    unknown = client.post(
        f"{base}/data/{data_id}/files",
        json={"name": "a.xyz", "file_type": "Hologram"},
        headers=member.headers,
    )
    assert unknown.status_code == 422 and "Unknown file type" in unknown.json()["detail"]
    no_service = client.post(
        f"{base}/processes", json={"name": "P", "service_id": "nope"}, headers=member.headers
    )
    assert no_service.status_code == 404
    # Another organisation's member: every id is not found, nothing changes.
    stranger = make_member()
    theirs = f"{API}/{stranger.organisation_id}"
    assert client.get(f"{theirs}/data/{data_id}", headers=stranger.headers).status_code == 404
    assert client.get(f"{base}/data/{data_id}", headers=stranger.headers).status_code == 404
    gone = client.delete(f"{theirs}/data/{data_id}", headers=stranger.headers)
    assert gone.status_code == 404
    assert client.get(f"{base}/data/{data_id}", headers=member.headers).status_code == 200
    download = client.get(flow["content"], headers=member.headers)
    assert download.status_code == 200 and json.loads(download.content) == GLASGOW


def test_a_view_only_member_executing_is_403_and_too_few_credits_is_402(
    client: TestClient, member: Member, make_member: Callable[..., Member], tmp_path: Path
) -> None:
    org = _org(client, member)
    region = org.create_data(name="Glasgow", files=[_region(tmp_path)], wait=True)
    service, _ = org.find_services(name="Region statistics")
    assert service is not None
    process = org.new_process(name="Stats", service=service)
    process.update(input_number=1, data=region)
    process.create()
    base = f"{API}/{member.organisation_id}/processes/{process.id}"
    viewer = make_member(privilege="view", organisation_id=member.organisation_id)
    refused = client.post(f"{base}/execute", headers=viewer.headers)
    assert refused.status_code == 403
    assert client.get(f"{base}/executions", headers=member.headers).json()["total"] == 0
    poor = make_member(credits=0)
    poor_org = _org(client, poor)
    poor_region = poor_org.create_data(name="G", files=[_region(tmp_path)], wait=True)
    poor_process = poor_org.new_process(name="Stats", service=service)
    poor_process.update(input_number=1, data=poor_region)
    poor_process.create()
    with pytest.raises(errors.PaymentRequired):
        poor_process.execute()
    assert poor_org.credit == 0 and list(poor_process.executions) == []


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # a PNG has none
def test_a_region_downloads_as_a_png_preview_through_the_sdk(
    client: TestClient, member: Member, tmp_path: Path
) -> None:
    org = _org(client, member)
    region = org.create_data(name="Glasgow", files=[_region(tmp_path)], wait=True)
    (file,) = list(region.files)
    file.download(path=tmp_path / "preview.png", wait=True, preview=True)
    assert file.download_complete()
    with rasterio.open(tmp_path / "preview.png") as png:
        assert png.driver == "PNG" and png.count == 4 and max(png.width, png.height) == 512
    table = tmp_path / "t.csv"
    table.write_text("a,b\n1,2\n")
    (plain,) = list(org.create_data(name="Table", files=[table], wait=True).files)
    answer = client.get(f"{plain.path}/content", params={"preview": "true"}, headers=member.headers)
    assert answer.status_code == 404
    assert "no preview" in answer.json()["detail"]
