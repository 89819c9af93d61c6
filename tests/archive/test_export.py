"""Export as a BagIt bag and its offline check, on both databases: a sound export passes every
check; each kind of tampering is named; `cairn archive verify` exits 1 on it."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import bagit
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cairn.archive._worker import EnhanceContext, Worker
from cairn.archive.export import verify_export
from cairn.archive.settings import ArchiveSettings
from cairn.archive.tsa import open_tsa
from cairn.cli.main import app as cli
from cairn.config import Settings
from cairn.db import UnitOfWork, make_engine, make_sessionmaker
from tests.archive.helpers import ArchiveClient, upload_form
from tests.archive.pki import LocalPKI, pyhanko_sign
from tests.factories import Member

DOCUMENT = b"Export me, bag and all.\n"


pytestmark = pytest.mark.usefixtures("trust_the_test_ca")


@pytest.fixture
def exported(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI, settings: Settings, tmp_path: Path
) -> tuple[str, Path]:
    """An archived (CAdES-A) container that keeps its document, exported to a zip."""
    signs = [pyhanko_sign(pki.rsa_signer, DOCUMENT)]
    form = upload_form(arch.storage_id, DOCUMENT, signs, UseArchiveCa="true")
    answer = client.post("/api/document/content", headers=arch.key_headers, **form)
    container_id: str = answer.json()["data"]
    engine = make_engine(settings)
    try:
        blobs = client.app.state.blobs  # type: ignore[attr-defined]
        context = EnhanceContext(blobs, ArchiveSettings(), settings.data_dir)
        assert Worker(UnitOfWork(make_sessionmaker(engine)), context).run_once()
    finally:
        engine.dispose()
    response = client.get(
        f"/api/v1/archive/containers/{container_id}/export", headers=arch.member.headers
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert f"container-{container_id}.zip" in response.headers["content-disposition"]
    path = tmp_path / "export.zip"
    path.write_bytes(response.content)
    return container_id, path


def _rewrite(source: Path, target: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    with zipfile.ZipFile(source) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    root = next(iter(files)).split("/", 1)[0]
    inner = {name.split("/", 1)[1]: raw for name, raw in files.items()}
    change(inner)
    with zipfile.ZipFile(target, "w") as archive:
        for name, raw in inner.items():
            archive.writestr(f"{root}/{name}", raw)
    return target


def _problems(path: Path, **kw: Path) -> dict[str, str]:
    return {c.what: c.problem for c in verify_export(path, **kw) if c.problem is not None}


def _remanifest(files: dict[str, bytes]) -> None:
    """What a careful forger does: recompute every manifest after changing files."""
    for algorithm in ("sha256", "sha512"):
        lines = [
            f"{hashlib.new(algorithm, raw).hexdigest()}  {name}\n"
            for name, raw in sorted(files.items())
            if name.startswith("data/")
        ]
        files[f"manifest-{algorithm}.txt"] = "".join(lines).encode()
    for algorithm in ("sha256", "sha512"):
        tags = ["bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest-sha512.txt"]
        lines = [f"{hashlib.new(algorithm, files[n]).hexdigest()}  {n}\n" for n in tags]
        files[f"tagmanifest-{algorithm}.txt"] = "".join(lines).encode()


def _roots_with_tsa(pki: LocalPKI, settings: Settings, folder: Path) -> Path:
    """The signers' CA and the root of cairn's own TSA, which stamped the signatures."""
    folder.mkdir()
    for source in [*pki.roots.iterdir(), open_tsa(settings.data_dir).root_pem]:
        (folder / f"{len(list(folder.iterdir()))}-{source.name}").write_bytes(source.read_bytes())
    return folder


def test_a_sound_export_passes_every_check(
    exported: tuple[str, Path],
    client: TestClient,
    arch: ArchiveClient,
    pki: LocalPKI,
    settings: Settings,
    tmp_path: Path,
) -> None:
    container_id, path = exported
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        root = f"container-{container_id}"
        assert {
            f"{root}/bagit.txt",
            f"{root}/bag-info.txt",
            f"{root}/manifest-sha256.txt",
            f"{root}/manifest-sha512.txt",
            f"{root}/tagmanifest-sha256.txt",
            f"{root}/data/document",
            f"{root}/data/signatures/signature-0.sig",
            f"{root}/data/events.json",
            f"{root}/data/container.json",
            f"{root}/data/log.json",
        } <= names
        assert archive.read(f"{root}/data/document") == DOCUMENT
        events = json.loads(archive.read(f"{root}/data/events.json"))
        kinds = ["created", "verified", "enhancing", "enhanced", "exported"]
        assert [e["kind"] for e in events] == kinds
        head = json.loads(archive.read(f"{root}/data/log.json"))["tree_head"]
        assert head["tree_size"] == len(kinds)  # the organisation's log holds only these
        assert any(n.startswith(f"{root}/data/reports/report-") for n in names)
    checks = verify_export(path, trust_roots=_roots_with_tsa(pki, settings, tmp_path / "roots"))
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]
    whats = " | ".join(c.what for c in checks)
    assert "archive-time-stamp-v3 #1" in whats and "signature-0.sig verifies" in whats
    assert "event 4 (exported) is in the log" in whats
    assert "the log's tree head is signed and timestamped" in whats
    events = client.get(
        f"/api/v1/archive/containers/{container_id}/events", headers=arch.member.headers
    ).json()
    assert events[-1]["kind"] == "exported"
    with zipfile.ZipFile(path) as archive:  # another reader of BagIt accepts it as well
        archive.extractall(tmp_path / "unzipped")
    bag = bagit.Bag(str(tmp_path / "unzipped" / f"container-{container_id}"))
    bag.validate()
    assert set(bag.algorithms) == {"sha256", "sha512"}


def test_an_untrusted_signer_fails_only_when_trust_roots_are_given(
    exported: tuple[str, Path], pki: LocalPKI, tmp_path: Path
) -> None:
    _, path = exported
    assert _problems(path) == {}  # integrity only
    stranger = tmp_path / "stranger-roots"
    stranger.mkdir()
    (stranger / "ca.pem").write_bytes(pki.stranger_ca.cert_path.read_bytes())
    problems = _problems(path, trust_roots=stranger)
    assert list(problems) == ["signature-0.sig verifies over the document"]
    assert "does not chain to a" in problems["signature-0.sig verifies over the document"]


def test_a_changed_document_is_named(exported: tuple[str, Path], tmp_path: Path) -> None:
    _, path = exported

    def forge(files: dict[str, bytes]) -> None:
        files["data/document"] = b"Export me, bag and all!\n"

    problems = _problems(_rewrite(path, tmp_path / "a.zip", forge))
    assert (
        "data/document does not match its sha256"
        in problems["manifest-sha256.txt: every file matches"]
    )
    assert "document_sha256" in problems["the document is the one container.json names (SHA-256)"]
    assert "does not match the document" in problems["signature-0.sig verifies over the document"]


def test_a_forger_who_fixes_every_checksum_is_still_caught(
    exported: tuple[str, Path], tmp_path: Path
) -> None:
    _, path = exported

    def forge(files: dict[str, bytes]) -> None:
        other = b"A different contract.\n"
        files["data/document"] = other
        meta = json.loads(files["data/container.json"])
        meta["document_sha256"] = hashlib.sha256(other).hexdigest()
        files["data/container.json"] = json.dumps(meta).encode()
        _remanifest(files)

    problems = _problems(_rewrite(path, tmp_path / "b.zip", forge))
    assert set(problems) == {
        "signature-0.sig verifies over the document",
        "signature-0.sig: archive-time-stamp-v3 #1",
    }
    assert "message imprint" in problems["signature-0.sig: archive-time-stamp-v3 #1"]


def test_a_removed_file_and_a_changed_tag_file_are_named(
    exported: tuple[str, Path], tmp_path: Path
) -> None:
    _, path = exported

    def forge(files: dict[str, bytes]) -> None:
        del files["data/events.json"]
        files["bag-info.txt"] += b"Note: added later\n"

    problems = _problems(_rewrite(path, tmp_path / "c.zip", forge))
    assert (
        "data/events.json is listed but missing"
        in problems["manifest-sha512.txt: every file matches"]
    )
    assert "bag-info.txt does not match" in problems["tagmanifest-sha256.txt: every file matches"]


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(b"not a zip")
    assert list(_problems(path)) == ["the export is a readable zip"]


def test_cli_verify_exits_1_and_names_what_failed(
    exported: tuple[str, Path], tmp_path: Path, pki: LocalPKI
) -> None:
    _, path = exported
    good = CliRunner().invoke(cli, ["archive", "verify", str(path), "--json"])
    assert good.exit_code == 0, good.output
    assert all(row["ok"] for row in json.loads(good.stdout))

    def forge(files: dict[str, bytes]) -> None:
        files["data/signatures/signature-0.sig"] = files["data/signatures/signature-0.sig"][:-1]

    bad = CliRunner().invoke(
        cli, ["archive", "verify", str(_rewrite(path, tmp_path / "d.zip", forge)), "--json"]
    )
    assert bad.exit_code == 1
    failed = {row["check"] for row in json.loads(bad.stdout) if not row["ok"]}
    assert "manifest-sha256.txt: every file matches" in failed


def test_another_organisations_export_is_404(
    exported: tuple[str, Path], client: TestClient, make_member: Callable[..., Member]
) -> None:
    container_id, _ = exported
    stranger = make_member()
    answer = client.get(
        f"/api/v1/archive/containers/{container_id}/export", headers=stranger.headers
    )
    assert answer.status_code == 404


def _edit_events(
    files: dict[str, bytes], change: Callable[[list[dict[str, object]]], None]
) -> None:
    events = json.loads(files["data/events.json"])
    change(events)
    files["data/events.json"] = json.dumps(events).encode()
    _remanifest(files)


def test_a_rewritten_event_is_caught_by_the_log(exported: tuple[str, Path], tmp_path: Path) -> None:
    """A forger who rewrites an event (and fixes every checksum) is named by its leaf; one who
    rewrites the logged entry too is named by the proof, which no longer reaches the head."""
    _, path = exported

    def detail_only(events: list[dict[str, object]]) -> None:
        events[1]["detail"] = "Signature 0 was never checked."

    def entry_too(events: list[dict[str, object]]) -> None:
        detail_only(events)
        entry = json.loads(str(events[1]["log_entry"]))
        entry["detail"] = events[1]["detail"]
        events[1]["log_entry"] = json.dumps(entry, sort_keys=True, separators=(",", ":"))

    first = _problems(_rewrite(path, tmp_path / "e.zip", lambda f: _edit_events(f, detail_only)))
    assert first == {"event 1 (verified) is in the log": "the event differs from its logged entry"}
    second = _problems(_rewrite(path, tmp_path / "f.zip", lambda f: _edit_events(f, entry_too)))
    assert second == {
        "event 1 (verified) is in the log": "the inclusion proof does not lead to the tree head"
    }


def test_a_forged_tree_head_is_named(exported: tuple[str, Path], tmp_path: Path) -> None:
    _, path = exported

    def forge(files: dict[str, bytes]) -> None:
        log = json.loads(files["data/log.json"])
        log["tree_head"]["tree_size"] += 1
        files["data/log.json"] = json.dumps(log).encode()
        _remanifest(files)

    problems = _problems(_rewrite(path, tmp_path / "g.zip", forge))
    head = problems.pop("the log's tree head is signed and timestamped")
    assert "signature does not verify" in head and "timestamp covers something else" in head
    assert problems and all("does not lead to the tree head" in p for p in problems.values())
