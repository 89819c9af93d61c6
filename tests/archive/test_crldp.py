"""CRLs from distribution points: enhancement downloads the CRL a certificate names, uses it
for the revocation check at signing time and keeps it in the signature (LT); a CRL signed by
another key, an unreachable point, an oversize or garbage answer are not used, with a reason.

The distribution point is real: CRLs made by the test PKI (``tests.archive.pki.make_crl``,
signed with ``cryptography``) served over HTTP on 127.0.0.1 (``http.server`` in a thread),
downloaded by cairn with httpx.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from cryptography import x509
from fastapi.testclient import TestClient
from sqlalchemy import select

from cairn.archive import cades
from cairn.archive._crldp import MAX_BYTES, crl_urls, fetch_crls
from cairn.archive._enhance import Enhanced, EnhanceFailed
from cairn.archive._worker import EnhanceContext, Worker
from cairn.archive.models import ArchiveEvent
from cairn.archive.settings import ArchiveSettings
from cairn.archive.tsa import Tsa
from cairn.archive.verify import load_trust_roots, parse_signature, verify_signature
from cairn.config import Settings
from cairn.db import UnitOfWork
from tests.archive.helpers import ArchiveClient, enhance_with, pki_tsa, stamped_at, upload_form
from tests.archive.pki import Identity, LocalPKI, make_crl, make_identity, pyhanko_sign
from tests.servers import http_server

DOCUMENT = b"Revoked or not, the list says.\n"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class Point:
    """A local CRL distribution point: ``bodies`` maps a path to what it serves."""

    base: str = ""
    bodies: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def point() -> Iterator[Point]:
    state = Point()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append(self.path)
            body = state.bodies.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/pkix-crl")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with http_server(Handler) as base:
        state.base = base
        yield state


def _points(*urls: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(url)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
            for url in urls
        ]
    )


def _signer(pki: LocalPKI, folder: Path, *urls: str) -> Identity:
    """A signer of the test CA whose certificate names ``urls`` as CRL distribution points."""
    return make_identity(folder, "crldp-signer", issuer=pki.ca, extensions=(_points(*urls),))


def _enhance(pki: LocalPKI, tsa: Tsa, raw: bytes) -> Enhanced:
    return enhance_with(raw, tsa, pki.roots, document=DOCUMENT, fetch_crls=fetch_crls)


def _revocation(pki: LocalPKI, tsa: Tsa, raw: bytes) -> dict[str, object]:
    result = verify_signature(
        raw, DOCUMENT, trust_roots=load_trust_roots(pki.roots), tsa_roots=[tsa.root]
    )
    assert result.verdict == "valid", result.reason
    found: dict[str, object] = result.report["revocation"]
    return found


def _crls_in(raw: bytes) -> int:
    return len(cades._items(parse_signature(raw)["crls"]))


def test_fetching_is_off_by_default() -> None:
    assert ArchiveSettings().archive_fetch_crls is False


def test_only_http_points_are_asked(pki: LocalPKI, tmp_path: Path) -> None:
    signer = _signer(pki, tmp_path, "https://example.invalid/a.crl", "http://127.0.0.1/b.crl")
    assert crl_urls(signer.cert) == ["http://127.0.0.1/b.crl"]


def test_a_good_crl_is_used_and_kept_under_the_archive_timestamp(
    pki: LocalPKI, point: Point, tmp_path: Path
) -> None:
    point.bodies["/ca.crl"] = make_crl(pki.ca)  # PEM; lists no one
    tsa, signer = pki_tsa(pki), _signer(pki, tmp_path, point.base + "/ca.crl")
    enhanced = _enhance(pki, tsa, pyhanko_sign(signer, DOCUMENT))
    assert point.requests == ["/ca.crl"] and "crls" in enhanced.added and not enhanced.notes
    assert _crls_in(enhanced.raw) == 1
    signed = parse_signature(enhanced.raw)
    assert len(cades.hash_index(signed)["crls_hash_index"]) == 1  # the new ATSv3 covers it
    revocation = _revocation(pki, tsa, enhanced.raw)
    assert revocation["status"] == "good" and revocation["crls_used"] == 1


def test_a_signer_revoked_before_signing_time_is_refused(
    pki: LocalPKI, point: Point, tmp_path: Path
) -> None:
    tsa, signer = pki_tsa(pki), _signer(pki, tmp_path, point.base + "/ca.crl")
    point.bodies["/ca.crl"] = make_crl(pki.ca, ((signer, NOW - dt.timedelta(hours=1)),))
    with pytest.raises(EnhanceFailed, match=r"The signer's certificate .* was revoked on"):
        _enhance(pki, tsa, pyhanko_sign(signer, DOCUMENT))


def test_a_signer_revoked_after_its_signature_timestamp_is_archived_with_the_crl(
    pki: LocalPKI, point: Point, tmp_path: Path
) -> None:
    tsa, signer = pki_tsa(pki), _signer(pki, tmp_path, point.base + "/ca.crl")
    point.bodies["/ca.crl"] = make_crl(pki.ca, ((signer, NOW - dt.timedelta(hours=1)),))
    raw = stamped_at(pyhanko_sign(signer, DOCUMENT), tsa, NOW - dt.timedelta(hours=2))
    enhanced = _enhance(pki, tsa, raw)
    assert cades.detect_level(parse_signature(enhanced.raw)) == "A"
    assert _crls_in(enhanced.raw) == 1
    revocation = _revocation(pki, tsa, enhanced.raw)
    assert revocation["status"] == "revoked-later"
    assert revocation["revoked_at"] == (NOW - dt.timedelta(hours=1)).isoformat()


def test_a_crl_signed_by_another_key_is_ignored(
    pki: LocalPKI, point: Point, tmp_path: Path
) -> None:
    tsa, signer = pki_tsa(pki), _signer(pki, tmp_path, point.base + "/ca.crl")
    forger = make_identity(tmp_path, "forger", ca=True)
    # Under the CA's name, listing the signer as revoked, but signed by another key.
    forged = make_crl(pki.ca, ((signer, NOW - dt.timedelta(hours=1)),), signing_key=forger.key)
    point.bodies["/ca.crl"] = forged
    enhanced = _enhance(pki, tsa, pyhanko_sign(signer, DOCUMENT))
    assert "crls" not in enhanced.added and _crls_in(enhanced.raw) == 0
    assert enhanced.notes == [
        f"CRL from {point.base}/ca.crl not used: not signed by the certificate's issuer."
    ]
    assert _revocation(pki, tsa, enhanced.raw)["status"] == "unknown"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: nothing listens there


@pytest.mark.parametrize("case", ["unreachable", "missing", "oversize", "garbage"])
def test_a_point_that_gives_no_crl_is_a_reason_not_a_failure(
    pki: LocalPKI, point: Point, tmp_path: Path, case: str
) -> None:
    url = f"{point.base}/ca.crl"
    if case == "unreachable":
        url = f"http://127.0.0.1:{_free_port()}/ca.crl"
    elif case == "oversize":
        point.bodies["/ca.crl"] = b"0" * (MAX_BYTES + 1)
    elif case == "garbage":
        point.bodies["/ca.crl"] = b"this is not a certificate revocation list"
    tsa, signer = pki_tsa(pki), _signer(pki, tmp_path, url)
    enhanced = _enhance(pki, tsa, pyhanko_sign(signer, DOCUMENT))
    assert "archive-time-stamp-v3" in enhanced.added and _crls_in(enhanced.raw) == 0
    [note] = enhanced.notes
    expected = {
        "unreachable": "unreachable",
        "missing": "the server answered 404.",
        "oversize": f"more than the limit of {MAX_BYTES}",
        "garbage": "the answer is not a CRL (neither DER nor PEM)",
    }[case]
    assert note.startswith(f"CRL from {url} not used: ") and expected in note, note


def test_each_point_gives_its_own_outcome(pki: LocalPKI, point: Point, tmp_path: Path) -> None:
    signer = _signer(pki, tmp_path, point.base + "/gone.crl", point.base + "/ca.crl")
    point.bodies["/ca.crl"] = make_crl(pki.ca)
    first, second = fetch_crls(signer.asn1_cert, [pki.ca.asn1_cert])
    assert first.crl is None and first.problem and "/gone.crl not used" in first.problem
    assert second.crl is not None and second.problem is None


def test_the_worker_fetches_when_turned_on_and_records_why_not_used(
    client: TestClient,
    arch: ArchiveClient,
    pki: LocalPKI,
    settings: Settings,
    uow: UnitOfWork,
    point: Point,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CAIRN_ARCHIVE_TRUST_ROOTS", str(pki.roots))
    monkeypatch.setenv("CAIRN_ARCHIVE_FETCH_CRLS", "true")
    signer = _signer(pki, tmp_path, point.base + "/gone.crl")
    answer = client.post(
        "/api/document/content",
        headers=arch.key_headers,
        **upload_form(arch.storage_id, DOCUMENT, [pyhanko_sign(signer, DOCUMENT)]),
    )
    assert answer.status_code == 200, answer.text
    context = EnhanceContext(client.app.state.blobs, ArchiveSettings(), settings.data_dir)  # type: ignore[attr-defined]
    assert Worker(uow, context).run_once() is True
    assert point.requests == ["/gone.crl"]
    with uow.read() as session:
        detail = session.scalars(
            select(ArchiveEvent.detail).where(ArchiveEvent.kind == "enhanced")
        ).one()
    assert detail == f"CRL from {point.base}/gone.crl not used: the server answered 404."
