"""OCSP in LT: enhancement asks the responder the signer's certificate names and keeps its
answer in the signature; a revoked answer refuses the signature; a forged answer or a
responder that is down is no evidence.

The responder is real: ``cryptography.x509.ocsp`` answers signed by the test CA, served over
HTTP on 127.0.0.1 (``http.server`` in a thread), asked by cairn with httpx.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID

from cairn.archive import cades
from cairn.archive._enhance import Enhanced, EnhanceFailed
from cairn.archive._ocsp import fetch_ocsp, ocsp_responses, ocsp_status
from cairn.archive.tsa import Tsa
from cairn.archive.verify import load_trust_roots, parse_signature, verify_signature
from tests.archive.helpers import enhance_with, pki_tsa, stamped_at
from tests.archive.pki import Identity, Key, LocalPKI, make_identity, pyhanko_sign
from tests.servers import http_server

DOCUMENT = b"Checked online, kept offline.\n"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class Responder:
    """A local OCSP responder for the test CA: ``revoked`` maps serials to revocation times;
    ``signing_key`` signs the answers (the CA's unless a test forges them)."""

    ca: Identity
    signing_key: Key
    url: str = ""
    revoked: dict[int, dt.datetime] = field(default_factory=dict)
    known: dict[int, x509.Certificate] = field(default_factory=dict)
    requests: int = 0

    def answer(self, body: bytes) -> bytes:
        self.requests += 1
        request = ocsp.load_der_ocsp_request(body)
        cert = self.known[request.serial_number]
        revoked_at = self.revoked.get(request.serial_number)
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert,
            issuer=self.ca.cert,
            algorithm=request.hash_algorithm,
            cert_status=ocsp.OCSPCertStatus.REVOKED if revoked_at else ocsp.OCSPCertStatus.GOOD,
            this_update=NOW,
            next_update=NOW + dt.timedelta(days=1),
            revocation_time=revoked_at,
            revocation_reason=None,
        )
        builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, self.ca.cert)
        response = builder.sign(self.signing_key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)


@pytest.fixture
def responder(pki: LocalPKI) -> Iterator[Responder]:
    state = Responder(pki.ca, pki.ca.key)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            answer = state.answer(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/ocsp-response")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    with http_server(Handler) as base:
        state.url = f"{base}/ocsp"
        yield state


def _signer(pki: LocalPKI, folder: Path, responder: Responder) -> Identity:
    """A signer of the test CA whose certificate names the local responder (AIA)."""
    aia = x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(responder.url)
            )
        ]
    )
    signer = make_identity(folder, "ocsp-signer", issuer=pki.ca, extensions=(aia,))
    responder.known[signer.cert.serial_number] = signer.cert
    return signer


def _enhance(pki: LocalPKI, tsa: Tsa, raw: bytes) -> Enhanced:
    return enhance_with(raw, tsa, pki.roots, document=DOCUMENT, fetch_ocsp=fetch_ocsp)


def _revocation(pki: LocalPKI, tsa: Tsa, raw: bytes) -> dict[str, object]:
    result = verify_signature(
        raw, DOCUMENT, trust_roots=load_trust_roots(pki.roots), tsa_roots=[tsa.root]
    )
    assert result.verdict == "valid", result.reason
    found: dict[str, object] = result.report["revocation"]
    return found


def test_a_good_answer_goes_into_the_signature_under_the_archive_timestamp(
    pki: LocalPKI, responder: Responder, tmp_path: Path
) -> None:
    tsa, signer = pki_tsa(pki), _signer(pki, tmp_path, responder)
    enhanced = _enhance(pki, tsa, pyhanko_sign(signer, DOCUMENT))
    assert "ocsp" in enhanced.added and responder.requests == 1
    signed = parse_signature(enhanced.raw)
    [response] = ocsp_responses(signed)
    status = ocsp_status(response, signer.asn1_cert, [pki.ca.asn1_cert])
    assert status is not None and status.status == "good"
    assert len(cades.hash_index(signed)["crls_hash_index"]) == 1  # the ATSv3 covers it
    assert _revocation(pki, tsa, enhanced.raw) == {
        "status": "good",
        "at": _revocation(pki, tsa, enhanced.raw)["at"],
        "crls_used": 0,
        "ocsp_used": 1,
    }


def test_a_revoked_answer_refuses_a_signature_without_earlier_timestamp(
    pki: LocalPKI, responder: Responder, tmp_path: Path
) -> None:
    tsa, signer = pki_tsa(pki), _signer(pki, tmp_path, responder)
    responder.revoked[signer.cert.serial_number] = NOW - dt.timedelta(hours=1)
    with pytest.raises(EnhanceFailed, match="was revoked on"):
        _enhance(pki, tsa, pyhanko_sign(signer, DOCUMENT))


def test_a_signer_revoked_after_its_signature_timestamp_is_enhanced_with_the_answer(
    pki: LocalPKI, responder: Responder, tmp_path: Path
) -> None:
    tsa, signer = pki_tsa(pki), _signer(pki, tmp_path, responder)
    responder.revoked[signer.cert.serial_number] = NOW - dt.timedelta(hours=1)
    raw = stamped_at(pyhanko_sign(signer, DOCUMENT), tsa, NOW - dt.timedelta(hours=2))
    enhanced = _enhance(pki, tsa, raw)
    assert cades.detect_level(parse_signature(enhanced.raw)) == "A"
    revocation = _revocation(pki, tsa, enhanced.raw)
    assert revocation["status"] == "revoked-later" and revocation["ocsp_used"] == 1
    assert revocation["revoked_at"] == (NOW - dt.timedelta(hours=1)).isoformat()


def test_a_forged_answer_is_no_evidence_and_is_not_kept(
    pki: LocalPKI, responder: Responder, tmp_path: Path
) -> None:
    tsa, signer = pki_tsa(pki), _signer(pki, tmp_path, responder)
    responder.signing_key = make_identity(tmp_path, "forger", ca=True).key  # not the CA's key
    responder.revoked[signer.cert.serial_number] = NOW - dt.timedelta(hours=1)
    enhanced = _enhance(pki, tsa, pyhanko_sign(signer, DOCUMENT))
    assert responder.requests == 1 and "ocsp" not in enhanced.added
    assert ocsp_responses(parse_signature(enhanced.raw)) == []
    assert _revocation(pki, tsa, enhanced.raw)["status"] == "unknown"


def test_a_responder_that_is_down_leaves_the_crls_at_hand(
    pki: LocalPKI, responder: Responder, tmp_path: Path
) -> None:
    tsa, signer = pki_tsa(pki), _signer(pki, tmp_path, responder)
    responder.known.clear()  # every request now fails inside the handler: no answer
    enhanced = _enhance(pki, tsa, pyhanko_sign(signer, DOCUMENT))
    assert "ocsp" not in enhanced.added and "archive-time-stamp-v3" in enhanced.added
