"""The server starts without the signing libraries: pyHanko, pyhanko-certvalidator, aiohttp,
asn1crypto and cryptography cost the idle ``cairn serve`` ~30 MiB (issue #13, RSS goal), so
the archive area imports them only on the verify, enhance, seal and TSA paths. Likewise pyproj
and shapely (~48 MiB), which processing needs only to split or clip a region, and saxonche and
lxml (~13 MiB), which the XML database loads with its first request."""

from __future__ import annotations

import json
import subprocess
import sys

from cairn.config import Settings

SIGNING = ("pyhanko", "pyhanko_certvalidator", "aiohttp", "asn1crypto", "cryptography")
GEOMETRY = ("pyproj", "shapely")
XML = ("saxonche", "lxml")

# A fresh interpreter builds the app as `cairn serve` does (background workers on), answers a
# request, runs the archive worker's idle loop once, and reports what it imported; then it
# imports the verifier and the XML server, to show the probe sees these libraries when loaded.
PROBE = """
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from cairn.api import create_app
from cairn.archive._worker import EnhanceContext, Worker
from cairn.archive.settings import ArchiveSettings
from cairn.config import Settings
from cairn.db import UnitOfWork

def loaded():
    return sorted({name.split(".")[0] for name in sys.modules})

settings = Settings(data_dir=Path(sys.argv[1]), database_url=sys.argv[2])
app = create_app(settings)
app.state.background_workers = True
with TestClient(app) as client:
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/archive/statuses").status_code == 401
    context = EnhanceContext(app.state.blobs, ArchiveSettings(), settings.data_dir)
    Worker(UnitOfWork(app.state.sessionmaker), context).run_once()
    idle = loaded()
import cairn.archive.verify
verifying = loaded()
from cairn.xmldb import calls
calls.XmlSession
print(json.dumps({"idle": idle, "verifying": verifying, "xml": loaded()}))
"""


def test_the_idle_server_has_not_imported_the_signing_libraries(settings: Settings) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(settings.data_dir), settings.database_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert {"fastapi", "sqlalchemy", "cairn"} <= set(found["idle"])  # the probe sees imports
    assert set(found["idle"]).isdisjoint(SIGNING), sorted(set(found["idle"]) & set(SIGNING))
    assert set(found["idle"]).isdisjoint(GEOMETRY), sorted(set(found["idle"]) & set(GEOMETRY))
    assert set(found["idle"]).isdisjoint(XML), sorted(set(found["idle"]) & set(XML))
    assert set(SIGNING) <= set(found["verifying"])  # the names are the verifier's libraries
    assert set(XML) <= set(found["xml"])  # and the XML server's
