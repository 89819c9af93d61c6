"""The archive's demo (``cairn admin seed-demo``): the guide's own commands archive a file
signed by the demo signer with ``openssl cms``, verified against the demo CA, on both
databases."""

from __future__ import annotations

import re
import stat
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cairn.config import Settings
from cairn.db import UnitOfWork, make_engine, make_sessionmaker
from cairn.demo import seed_demo


def test_the_demo_guide_archives_a_file_signed_with_openssl(
    client: TestClient, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(settings)
    uow = UnitOfWork(make_sessionmaker(engine))
    demo = tmp_path / "demo"
    try:
        blobs = client.app.state.blobs  # type: ignore[attr-defined]
        assert seed_demo(uow, blobs, work_dir=tmp_path / "work", demo_dir=demo)
        assert not seed_demo(uow, blobs, work_dir=tmp_path / "work", demo_dir=demo)
    finally:
        engine.dispose()
    guide = (demo / "archive.txt").read_text()
    for private in (demo / "archive.txt", demo / "signer.key"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = re.search(r"X-Api-Key: (\S+)\"", guide)
    storage = re.search(r"StorageId=(\d+)", guide)
    roots = re.search(r"CAIRN_ARCHIVE_TRUST_ROOTS=(\S+)", guide)
    assert key and storage and roots
    monkeypatch.setenv("CAIRN_ARCHIVE_TRUST_ROOTS", roots.group(1))

    document = tmp_path / "document.txt"
    document.write_text("A document to keep.\n")
    signature = subprocess.run(
        ["openssl", "cms", "-sign", "-binary", "-in", str(document),
         "-signer", str(demo / "signer.pem"), "-inkey", str(demo / "signer.key"),
         "-outform", "DER", "-md", "sha256"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    headers = {"X-Api-Key": key.group(1)}
    form = {
        "ContainerName": "MyContainer",
        "ArchiveDate": "21.07.2030",
        "StorageId": storage.group(1),
        "SaveType": "Temporary",
        "UseArchiveCa": "false",
    }
    answer = client.post(
        "/api/document/content",
        headers=headers,
        data=form,
        files=[
            ("Signs", ("a-detached.sig", signature, "application/octet-stream")),
            ("Content", ("document.txt", document.read_bytes(), "text/plain")),
        ],
    )
    assert answer.status_code == 200, answer.text
    details = client.get(f"/api/document/{answer.json()['data']}", headers=headers).json()["data"]
    assert details["status"] == 2 and details["statusReason"] is None  # verified, trusted
    assert details["storage"]["name"] == "Demo storage"
    assert details["sourceSystem"]["name"] == "Demo source system"
