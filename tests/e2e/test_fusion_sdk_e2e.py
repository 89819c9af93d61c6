"""Acceptance: the unmodified Fusion Platform SDK runs the manual's Quick Example against a
real `cairn serve` (only `api_url` and a short polling period changed).

The SDK is installed from PyPI into its own virtual environment, cached under the pytest cache
folder so reruns are quick; the test skips (saying why) only if it cannot be installed.
"""

from __future__ import annotations

import json
import re
import subprocess
import venv
from pathlib import Path

import pytest

from tests.e2e.conftest import Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

EMAIL = "quick@example.org"
PASSWORD = "Quick-example-pass1"
SDK = "fusion-platform-python-sdk==2.2.*"


@pytest.fixture(scope="session")
def sdk_python(request: pytest.FixtureRequest) -> Path:
    """A Python with the published SDK installed (built once, then reused from the cache)."""
    root = Path(request.config.cache.mkdir("fusion-sdk-2.2"))
    python = root / "venv" / "bin" / "python"
    marker = root / "installed"
    if not marker.exists():
        venv.create(root / "venv", with_pip=True, clear=True)
        installed = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", SDK],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if installed.returncode != 0:
            pytest.skip(f"cannot install {SDK}: {installed.stderr.strip()[-500:]}")
        marker.write_text(SDK)
    return python


def _quick_example(python: Path, api_url: str) -> str:
    """The SDK's own quick_example.py, with only its login call given api_url and a 1 s poll."""
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
    source = (Path(found.stdout.strip()) / "quick_example.py").read_text()
    login = re.compile(r"fusion_platform\.login\(email='me@org\.com', password='MyPassword123!'\)")
    assert len(login.findall(source)) == 1, "the Quick Example's login line changed"
    return login.sub(
        f"fusion_platform.login(email={EMAIL!r}, password={PASSWORD!r}, api_url={api_url!r}, "
        "session_options={'api_update_wait_period': 1})",
        source,
    )


def test_quick_example_runs_unchanged(server: Server, sdk_python: Path, tmp_path: Path) -> None:
    for args in (
        ("admin", "create-org", "--name", "Quick"),
        ("admin", "create-user", "--email", EMAIL, "--password", PASSWORD, "--org", "Quick"),
        ("admin", "grant-credits", "--org", "Quick", "--amount", "10"),
    ):
        done = server.cli(*args)
        assert done.returncode == 0, done.stderr
    script = tmp_path / "quick_example.py"
    script.write_text(_quick_example(sdk_python, f"{server.url}/fusion"))
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
    credits = server.cli("admin", "grant-credits", "--org", "Quick", "--amount", "1", "--json")
    assert credits.returncode == 0, credits.stderr
    assert json.loads(credits.stdout)["balance"] == 10
