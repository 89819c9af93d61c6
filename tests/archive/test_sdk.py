"""The SDK's ``client.archive`` in-process over cairn's native archive routes."""

from __future__ import annotations

import base64
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cairn import errors
from cairn.archive import merkle
from cairn.client import Client
from cairn.config import Settings
from tests.archive.helpers import make_archive_client
from tests.archive.pki import LocalPKI, pyhanko_sign
from tests.factories import Member

DOCUMENT = b"Signed minutes.\n"


pytestmark = pytest.mark.usefixtures("trust_the_test_ca")


def test_put_get_search_and_download(
    client: TestClient,
    settings: Settings,
    make_member: Callable[..., Member],
    pki: LocalPKI,
    tmp_path: Path,
) -> None:
    arch = make_archive_client(settings, make_member())
    sdk = Client("http://testserver", token=arch.member.token, http_client=client)
    (tmp_path / "minutes.txt").write_bytes(DOCUMENT)
    signature = tmp_path / "minutes.txt.sig"
    signature.write_bytes(pyhanko_sign(pki.rsa_signer, DOCUMENT))

    assert [s.model_dump() for s in sdk.archive.storages()] == [
        {"id": arch.storage_id, "name": "Main"}
    ]
    container = sdk.archive.put(
        tmp_path / "minutes.txt", [signature], storage_id=arch.storage_id, name="Minutes"
    )
    assert container.status == 2 and container.status_name == "Verified"
    assert container.signatures[0].verdict == "valid" and container.signatures[0].level == "BES"
    assert sdk.archive.get(container.id).name == "Minutes"
    assert [c.id for c in sdk.archive.search(name="minu")] == [container.id]
    assert list(sdk.archive.search(name="nothing")) == []
    assert [r["verdict"] for r in container.reports()] == ["valid"]
    assert [e["kind"] for e in container.events()] == ["created", "verified"]
    zipped = container.download_signatures(tmp_path / "signatures.zip")
    with zipfile.ZipFile(zipped) as archive:
        assert archive.read("signature-0.sig") == signature.read_bytes()
    assert {s["id"] for s in sdk.archive.statuses()} == set(range(9))

    bad = tmp_path / "bad.sig"
    bad.write_bytes(b"not a signature")
    with pytest.raises(errors.BadRequest, match="Not a CMS signature"):
        sdk.archive.put(tmp_path / "minutes.txt", [bad], storage_id=arch.storage_id, name="x")
    stranger = Client("http://testserver", token=make_member().token, http_client=client)
    with pytest.raises(errors.NotFound):
        stranger.archive.get(container.id)
    assert list(stranger.archive.search()) == []


def test_the_transparency_log_through_the_sdk_and_cli(
    client: TestClient,
    settings: Settings,
    make_member: Callable[..., Member],
    pki: LocalPKI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arch = make_archive_client(settings, make_member())
    sdk = Client("http://testserver", token=arch.member.token, http_client=client)
    (tmp_path / "minutes.txt").write_bytes(DOCUMENT)
    signature = tmp_path / "minutes.txt.sig"
    signature.write_bytes(pyhanko_sign(pki.rsa_signer, DOCUMENT))
    container = sdk.archive.put(
        tmp_path / "minutes.txt", [signature], storage_id=arch.storage_id, name="Logged"
    )
    org = arch.member.organisation_id
    head = sdk.archive.tree_head(org)
    events = container.events()
    assert head["tree_size"] == len(events) >= 2
    root = base64.b64decode(head["root_hash"])
    for event in events:
        proof = sdk.archive.inclusion_proof(org, event["log_index"])
        leaf = merkle.leaf_hash(event["log_entry"].encode())
        hashes = [base64.b64decode(h) for h in proof["hashes"]]
        assert merkle.verify_inclusion(leaf, event["log_index"], head["tree_size"], hashes, root)
    first = sdk.archive.inclusion_proof(org, 0, tree_size=1)
    grown = sdk.archive.consistency_proof(org, 1)
    assert merkle.verify_consistency(
        1,
        grown["tree_size"],
        base64.b64decode(first["root_hash"]),
        base64.b64decode(grown["root_hash"]),
        [base64.b64decode(h) for h in grown["hashes"]],
    )
    stranger = Client("http://testserver", token=make_member().token, http_client=client)
    with pytest.raises(errors.NotFound):
        stranger.archive.tree_head(org)

    # `cairn archive log` prints the same, through the SDK on this in-process app.
    from typer.testing import CliRunner

    from cairn.cli import archive as cli

    expected = sdk.archive.inclusion_proof(org, 0)["hashes"]
    token = arch.member.token
    monkeypatch.setattr(  # the CLI closes its client: give it one of its own
        cli,
        "remote_client",
        lambda api_url: Client(
            "http://testserver", token=token, http_client=TestClient(client.app)
        ),
    )
    runner = CliRunner()
    shown = runner.invoke(cli.app, ["log", org, "--leaf", "0"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["hashes"] == expected
    both = runner.invoke(cli.app, ["log", org, "--leaf", "0", "--since", "1"])
    assert both.exit_code == 2 and "not both" in both.output
