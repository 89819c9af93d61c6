"""End to end against a real `cairn serve`: admin commands make a storage and a source system,
the guide's curl uploads an OpenSSL-made signature, the worker inside the server archives it,
and OpenSSL verifies the CAdES-A signature it serves; cairn's TSA answers `openssl ts`."""

from __future__ import annotations

import io
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.archive.pki import LocalPKI, make_pki, openssl_sign
from tests.e2e.conftest import Server, _serve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
# Generous: the first upload imports pyHanko in the server, and CI machines are shared.
TIMEOUT = 60
DOCUMENT = b"A document for the real server.\n"


@pytest.fixture(scope="module")
def e2e_pki(tmp_path_factory: pytest.TempPathFactory) -> LocalPKI:
    return make_pki(tmp_path_factory.mktemp("e2e-pki"))


@pytest.fixture(scope="module")
def archive_server(tmp_path_factory: pytest.TempPathFactory, e2e_pki: LocalPKI) -> Iterator[Server]:
    extra = {"CAIRN_ARCHIVE_TRUST_ROOTS": str(e2e_pki.roots)}
    yield from _serve(tmp_path_factory.mktemp("archive-server"), extra)


def test_upload_archive_and_verify_with_openssl(
    archive_server: Server, e2e_pki: LocalPKI, tmp_path: Path
) -> None:
    server = archive_server
    assert server.cli("admin", "create-org", "--name", "Registry").returncode == 0
    made = server.cli("admin", "create-storage", "--org", "Registry", "--name", "Main")
    assert made.returncode == 0, made.stderr
    storage_id = int(made.stdout.strip())
    made = server.cli("admin", "create-source-system", "--org", "Registry", "--name", "ERP")
    assert made.returncode == 0, made.stderr
    system_id, api_key = made.stdout.split()
    assert int(system_id) >= 1 and api_key.startswith("cak_")

    document = tmp_path / "document.txt"
    document.write_bytes(DOCUMENT)
    signature = openssl_sign(e2e_pki.rsa_signer, document)
    headers = {"X-Api-Key": api_key, "accept": "text/plain"}
    answer = httpx.post(
        f"{server.url}/api/document/content",
        headers=headers,
        timeout=TIMEOUT,
        data={
            "ContainerName": "MyContainer",
            "ArchiveDate": "21.07.2030",
            "StorageId": str(storage_id),
            "SaveType": "Temporary",
            "UseArchiveCa": "false",
        },
        files=[
            ("Signs", ("a-detached.sig", signature, "application/sig")),
            ("Content", ("document.txt", DOCUMENT, "text/plain")),
        ],
    )
    assert answer.status_code == 200, answer.text
    container_id = answer.json()["data"]

    status_url = f"{server.url}/api/document/{container_id}/status"
    deadline = time.monotonic() + 90
    status = None
    while time.monotonic() < deadline:
        status = httpx.get(status_url, headers=headers, timeout=TIMEOUT).json()["data"]
        if status in (4, 7):
            break
        time.sleep(0.5)
    assert status == 4, server.log.read_text()[-3000:]

    zipped = httpx.get(
        f"{server.url}/api/document/{container_id}/sign", headers=headers, timeout=TIMEOUT
    )
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        enhanced = archive.read("signature-0.sig")
    assert enhanced != signature
    (tmp_path / "enhanced.sig").write_bytes(enhanced)
    checked = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", "enhanced.sig",
         "-content", "document.txt", "-CAfile", str(e2e_pki.ca.cert_path), "-purpose", "any",
         "-out", "/dev/null"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr


def test_cairns_tsa_answers_openssl(archive_server: Server, tmp_path: Path) -> None:
    server = archive_server
    email, password = "tsa-user@example.org", "Stamp-it-2026!"
    server.cli("admin", "create-org", "--name", "Stampers")
    made = server.cli(
        "admin", "create-user", "--email", email, "--password", password, "--org", "Stampers"
    )
    assert made.returncode == 0, made.stderr
    token = httpx.post(
        f"{server.url}/api/v1/auth/login",
        json={"email": email, "password": password},
        timeout=TIMEOUT,
    ).json()["token"]
    (tmp_path / "data.txt").write_bytes(b"stamp me\n")
    subprocess.run(
        ["openssl", "ts", "-query", "-data", "data.txt", "-sha256", "-cert", "-out", "q.tsq"],
        cwd=tmp_path, check=True, capture_output=True,
    )  # fmt: skip
    answer = httpx.post(
        f"{server.url}/api/v1/tsa",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/timestamp-query"},
        content=(tmp_path / "q.tsq").read_bytes(),
        timeout=TIMEOUT,
    )
    assert answer.headers["content-type"] == "application/timestamp-reply"
    (tmp_path / "r.tsr").write_bytes(answer.content)
    folder = server.data_dir / "archive-tsa"
    verified = subprocess.run(
        ["openssl", "ts", "-verify", "-queryfile", "q.tsq", "-in", "r.tsr",
         "-CAfile", str(folder / "root.pem"), "-untrusted", str(folder / "tsa.pem")],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert "Verification: OK" in verified.stdout, verified.stdout + verified.stderr
