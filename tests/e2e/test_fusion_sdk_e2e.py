"""Acceptance: the unmodified Fusion Platform SDK runs the manual's Quick Example against a
real `cairn serve`, in the current era (2.2.x: only `api_url` and a 1 s polling period changed)
and the manual's (1.17.x: only `api_url` changed; it polls every 10 s); and the manual's
Detailed Example in both eras too (with the pandas, rasterio and matplotlib it imports;
matplotlib draws off-screen) on the SYNTHETIC Sentinel-2 demo service, where the Lake
District runs as a split group with its Statistics Aggregator.

The SDK is installed from PyPI into its own virtual environment, cached under the pytest cache
folder so reruns are quick; the test skips (saying why) only if it cannot be installed.
"""

from __future__ import annotations

import base64
import fcntl
import json
import re
import socket
import subprocess
import time
import venv
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PASSWORD = "Quick-example-pass1"
VERSIONS = ["2.2", "1.17"]


def _venv_with(request: pytest.FixtureRequest, name: str, packages: list[str]) -> Path:
    """A Python with ``packages`` installed, built once under the pytest cache and reused.
    Test workers (xdist) share the cache folder, so the build is done under a file lock: the
    first worker builds, the others wait and reuse it."""
    root = Path(request.config.cache.mkdir(name))
    python = root / "venv" / "bin" / "python"
    marker = root / "installed"
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not marker.exists():
            venv.create(root / "venv", with_pip=True, clear=True)
            installed = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", *packages],
                capture_output=True,
                text=True,
                timeout=900,
            )
            if installed.returncode != 0:
                pytest.skip(f"cannot install {packages}: {installed.stderr.strip()[-500:]}")
            marker.write_text(" ".join(packages))
    return python


@pytest.fixture(scope="session", params=VERSIONS)
def sdk(request: pytest.FixtureRequest) -> tuple[str, Path]:
    """(version, a Python with that SDK installed), built once, then reused from the cache."""
    version: str = request.param
    package = f"fusion-platform-python-sdk=={version}.*"
    return version, _venv_with(request, f"fusion-sdk-{version}", [package])


@pytest.fixture(scope="session", params=VERSIONS)
def sdk_detailed(request: pytest.FixtureRequest) -> tuple[str, Path]:
    """(version, a Python with that SDK and what the Detailed Example imports), cached like
    ``sdk``."""
    version: str = request.param
    packages = [f"fusion-platform-python-sdk=={version}.*", "pandas", "matplotlib", "rasterio"]
    return version, _venv_with(request, f"fusion-sdk-{version}-detailed", packages)


def _member(server: Server, org: str, email: str, *, credits: int = 0) -> None:
    """A new organisation with one member (password ``PASSWORD``), made with `cairn admin`."""
    steps = [
        ("admin", "create-org", "--name", org),
        ("admin", "create-user", "--email", email, "--password", PASSWORD, "--org", org),
    ]
    if credits:
        steps.append(("admin", "grant-credits", "--org", org, "--amount", str(credits)))
    for args in steps:
        done = server.cli(*args)
        assert done.returncode == 0, done.stderr


def _sdk_example(python: Path, name: str, api_url: str, version: str, email: str) -> str:
    """The SDK's own ``name`` example, with only its login call given api_url (and, where the
    SDK has the option, a 1 s poll)."""
    found = subprocess.run(
        [
            str(python),
            "-c",
            "import fusion_platform, os; print(os.path.dirname(fusion_platform.__file__))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    source = (Path(found.stdout.strip()) / name).read_text()
    login = re.compile(r"fusion_platform\.login\(email='me@org\.com', password='MyPassword123!'\)")
    assert len(login.findall(source)) == 1, f"the login line of {name} changed"
    poll = ", session_options={'api_update_wait_period': 1}" if version != "1.17" else ""
    return login.sub(
        f"fusion_platform.login(email={email!r}, password={PASSWORD!r}, api_url={api_url!r}{poll})",
        source,
    )


def test_quick_example_runs_unchanged(
    server: Server, sdk: tuple[str, Path], tmp_path: Path
) -> None:
    version, sdk_python = sdk
    org = f"Quick {version}"
    email = f"quick-{version}@example.org"
    _member(server, org, email, credits=10)
    script = tmp_path / "quick_example.py"
    script.write_text(
        _sdk_example(sdk_python, "quick_example.py", f"{server.url}/fusion", version, email)
    )
    run = subprocess.run(
        [str(sdk_python), str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    log = server.log.read_text(errors="replace")[-3000:]
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n--- server log ---\n{log}"
    assert "Price: 1" in run.stdout
    assert "Downloading Elevation" in run.stdout
    tif = tmp_path / "component_0" / "0" / "elevation.tif"
    csv = tmp_path / "component_0" / "1" / "elevation_statistics.csv"
    assert tif.read_bytes()[:4] in (b"II*\x00", b"MM\x00*"), "not a GeoTIFF"
    assert "minimum" in csv.read_text()
    # The execution was charged its price: 10 granted, 1 spent, and 1 more granted now.
    credits = server.cli("admin", "grant-credits", "--org", org, "--amount", "1", "--json")
    assert credits.returncode == 0, credits.stderr
    assert json.loads(credits.stdout)["balance"] == 10


def test_detailed_example_runs_unchanged(
    server: Server, sdk_detailed: tuple[str, Path], tmp_path: Path
) -> None:
    """On 1.17 every wait polls every 10 s (upload analysis, execution start, progress), so
    this run takes a minute or two; 2.2 polls every second."""
    version, python = sdk_detailed
    org, email = f"Detailed {version}", f"detailed-{version}@example.org"
    _member(server, org, email, credits=10)
    script = tmp_path / "detailed_example.py"
    api_url = f"{server.url}/fusion"
    script.write_text(_sdk_example(python, "detailed_example.py", api_url, version, email))
    run = subprocess.run(
        [str(python), str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg", "HOME": str(tmp_path)},
    )
    log = server.log.read_text(errors="replace")[-3000:]
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n--- server log ---\n{log}"
    assert "Price: 1" in run.stdout
    # The Lake District (~2,300 km²) is larger than the demo takes (1,000 km²): it ran as a
    # group, and find_executions(group_id=...) gave every slice and the aggregator, whose
    # outputs all downloaded (each slice's raster as "<i>_<file name>").
    assert run.stdout.count("Downloading statistics from") == 1
    slices = run.stdout.count("Downloading output from")
    assert slices >= 3, run.stdout
    rasters = sorted(tmp_path.glob("*_cloud_classification_*.tif"))
    assert len(rasters) == slices
    # The statistics it printed with pandas: the four classes of the synthetic scene.
    for name in ("ground", "cloud shadow", "thick cloud", "thin cloud"):
        assert name in run.stdout
    import rasterio  # the test environment's own, to read what the example wrote

    with rasterio.open(tmp_path / "mosaic.tif") as mosaic:  # merge keeps no tags
        assert mosaic.count == 1 and mosaic.nodata == 255
        assert set(mosaic.read(1).flatten().tolist()) == {0, 1, 2, 3, 255}
        west, south, east, north = mosaic.bounds
    for raster in rasters:
        with rasterio.open(raster) as classified:
            assert classified.tags()["acquisition_date"] == "2021-03-27"
            assert "SYNTHETIC" in classified.tags()["source"]
            # Every slice lies inside the mosaic, and each is only a part of it.
            left, bottom, right, top = classified.bounds
            assert west - 1e-9 <= left and right <= east + 1e-9
            assert south - 1e-9 <= bottom and top <= north + 1e-9
            assert (right - left) * (top - bottom) < (east - west) * (north - south)


DISPATCHING = """
import fusion_platform

user = fusion_platform.login(email=EMAIL, password=PASSWORD, api_url=API_URL{poll})
organisation = next(user.organisations)
found, _ = organisation.find_dispatchers(name='Local folder')
print('FOUND', found.name)
data = organisation.create_data(name='Glasgow', file_type=fusion_platform.FILE_TYPE_GEOJSON,
                                files=[fusion_platform.EXAMPLE_GLASGOW_FILE], wait=True)
service, _ = organisation.find_services(keyword='Elevation')
process = organisation.new_process(name='Dispatched', service=service)
process.update(input_number=1, data=data)
for dispatcher in process.available_dispatchers:
    print(dispatcher)
    for option in dispatcher.options:
        print(option)
process.add_dispatcher(number=1)
process.add_dispatcher(name='Local folder')
process.update(dispatcher_number=2, option_name='folder', value='sdk-run')
process.remove_dispatcher(number=1)
process.create()
for dispatcher in process.dispatchers:
    print('DISPATCHER', dispatcher.name, [(o.name, o.value) for o in dispatcher.options])
process.execute(wait=True)
print('EXECUTION', next(process.executions).id)
process.delete()
data.delete()
"""


def test_dispatchers_work_unchanged_from_the_sdk(
    server: Server, sdk: tuple[str, Path], tmp_path: Path
) -> None:
    """The manual's dispatcher calls (available_dispatchers, add_dispatcher by number and by
    name, update(dispatcher_number=...), remove_dispatcher, dispatchers, find_dispatchers);
    the Local folder dispatcher then copies the outputs under the server's dispatch root."""
    version, sdk_python = sdk
    org, email = f"Dispatch {version}", f"dispatch-{version}@example.org"
    _member(server, org, email, credits=10)
    poll = ", session_options={'api_update_wait_period': 1}" if version != "1.17" else ""
    script = tmp_path / "dispatching.py"
    script.write_text(
        f"EMAIL, PASSWORD, API_URL = {email!r}, {PASSWORD!r}, {server.url + '/fusion'!r}\n"
        + DISPATCHING.format(poll=poll)
    )
    run = subprocess.run(
        [str(sdk_python), str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    log = server.log.read_text(errors="replace")[-3000:]
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}\n--- server log ---\n{log}"
    assert "FOUND Local folder" in run.stdout
    assert "DISPATCHER Local folder [('folder', 'sdk-run'), ('condition', None)]" in run.stdout
    (execution_id,) = re.findall(r"EXECUTION (\S+)", run.stdout)
    copied = server.data_dir / "dispatch" / "sdk-run" / execution_id / "1_Elevation"
    assert (copied / "Elevation" / "elevation.tif").read_bytes()[:4] in (b"II*\x00", b"MM\x00*")
    assert "minimum" in (copied / "Elevation_statistics" / "elevation_statistics.csv").read_text()


def test_an_upload_cut_off_half_way_leaves_a_deletable_incomplete_item(server: Server) -> None:
    """A real client disconnecting mid-body: nothing is stored, the file says why."""
    email, org = "cut@example.org", "Cut"
    _member(server, org, email)
    with httpx.Client(base_url=f"{server.url}/fusion", timeout=30) as http:
        tokens = http.post("/users/login", json={"User": {"email": email, "password": PASSWORD}})
        headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
        user = http.get(f"/users/{_subject(tokens.json()['id_token'])}", headers=headers)
        base = f"/organisations/{user.json()['model']['organisations'][0]['id']}"
        data_id = http.post(f"{base}/data", headers=headers, json={"Data[name]": "Cut"}).json()[
            "model"
        ]["id"]
        url = http.post(
            f"{base}/data/{data_id}/add_file",
            headers=headers,
            json={"Data": {"name": "big.geojson", "file_type": "GeoJSON"}},
        ).json()["extras"]["url"]
        target = httpx.URL(url)
        with socket.create_connection((target.host, target.port)) as raw:
            raw.sendall(
                f"PUT {target.raw_path.decode()} HTTP/1.1\r\nHost: {target.host}\r\n"
                "Content-Length: 1000000\r\n\r\n".encode()
                + b'{"type": "FeatureCollection", "features": ['
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            (file,) = http.get(f"{base}/data/{data_id}/files", headers=headers).json()["list"]
            if "error" in file:
                break
            time.sleep(0.2)
        assert file["error"] is True and "cut off" in file["error_message"]
        assert "publishable" not in file
        again = httpx.put(url, content=b"{}")
        assert again.status_code == 403  # the URL was spent by the cut-off attempt
        assert http.delete(f"{base}/data/{data_id}", headers=headers).json() == {}


def _subject(id_token: str) -> str:
    payload = id_token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    subject: str = claims["sub"]
    return subject
