"""A signer revoked at signing time is refused, one revoked later is not (issue #17).

Real CRLs signed by the test CA (``cryptography``), real signatures (pyHanko) and real
timestamp tokens from a TSA the test CA certified; no network: the signer certificates name no
CRL source, which is why pyhanko-certvalidator alone ignored the CRLs (``archive._revocation``).
The signing time is the signature timestamp's, else the time of verification: the claimed
signing-time attribute is the signer's own word.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from asn1crypto import cms  # type: ignore[import-untyped]
from fastapi.testclient import TestClient

from cairn.archive import cades
from cairn.archive._enhance import EnhanceFailed
from cairn.archive.tsa import Tsa
from cairn.archive.verify import load_crls, load_trust_roots, parse_signature, verify_signature
from tests.archive.helpers import ArchiveClient, enhance_with, pki_tsa, stamped_at, upload_form
from tests.archive.pki import Identity, LocalPKI, make_crl, make_identity, pyhanko_sign

DOCUMENT = b"Signed by a key that was later reported stolen.\n"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def signer(pki: LocalPKI, tmp_path: Path) -> Identity:
    """A fresh signer of the test CA (valid from a day ago), revoked only in these tests."""
    return make_identity(tmp_path, "revocable-signer", issuer=pki.ca)


@pytest.fixture
def past_tsa(pki: LocalPKI) -> Tsa:
    return pki_tsa(pki)


def _roots(pki: LocalPKI, tmp_path: Path, crl: bytes) -> Path:
    roots = tmp_path / "roots"
    shutil.copytree(pki.roots, roots)
    (roots / "ca.crl").write_bytes(crl)
    return roots


def _verify(raw: bytes, roots: Path, tsa: Tsa):  # type: ignore[no-untyped-def]
    return verify_signature(
        raw,
        DOCUMENT,
        trust_roots=load_trust_roots(roots),
        tsa_roots=[tsa.root],
        crls=load_crls(roots),
    )


def test_a_signature_without_timestamp_of_a_signer_revoked_before_now_is_refused(
    pki: LocalPKI, signer: Identity, past_tsa: Tsa, tmp_path: Path
) -> None:
    revoked_at = NOW - dt.timedelta(hours=1)
    roots = _roots(pki, tmp_path, make_crl(pki.ca, ((signer, revoked_at),)))
    result = _verify(pyhanko_sign(signer, DOCUMENT), roots, past_tsa)  # claims signing "now"
    assert result.verdict == "revoked-at-signing" and not result.ok
    assert "was revoked on" in str(result.reason) and str(signer.cert.serial_number) in str(
        result.reason
    )
    assert result.report["revocation"]["status"] == "revoked"
    assert result.report["revocation"]["revoked_at"] == revoked_at.isoformat()


def test_a_timestamp_after_the_revocation_is_refused_too(
    pki: LocalPKI, signer: Identity, past_tsa: Tsa, tmp_path: Path
) -> None:
    roots = _roots(pki, tmp_path, make_crl(pki.ca, ((signer, NOW - dt.timedelta(hours=3)),)))
    raw = stamped_at(pyhanko_sign(signer, DOCUMENT), past_tsa, NOW - dt.timedelta(hours=2))
    assert _verify(raw, roots, past_tsa).verdict == "revoked-at-signing"


def test_a_signer_revoked_after_the_signature_timestamp_stays_valid(
    pki: LocalPKI, signer: Identity, past_tsa: Tsa, tmp_path: Path
) -> None:
    revoked_at = NOW - dt.timedelta(hours=1)
    roots = _roots(pki, tmp_path, make_crl(pki.ca, ((signer, revoked_at),)))
    raw = stamped_at(pyhanko_sign(signer, DOCUMENT), past_tsa, NOW - dt.timedelta(hours=2))
    result = _verify(raw, roots, past_tsa)
    assert result.verdict == "valid", result.reason
    assert result.report["revocation"]["status"] == "revoked-later"
    assert result.report["revocation"]["at"] == (NOW - dt.timedelta(hours=2)).isoformat()
    # Without the timestamp the same signature proves no time before the revocation.
    assert _verify(pyhanko_sign(signer, DOCUMENT), roots, past_tsa).verdict == "revoked-at-signing"


def test_a_crl_not_signed_by_the_signers_ca_is_no_evidence(
    pki: LocalPKI, signer: Identity, past_tsa: Tsa, tmp_path: Path
) -> None:
    # Same issuer name as the test CA (test PKIs reuse names), another key: not the issuer.
    impostor = make_identity(tmp_path, "ca", ca=True)
    assert impostor.cert.subject == pki.ca.cert.subject
    forged = make_crl(pki.ca, ((signer, NOW - dt.timedelta(hours=1)),), signing_key=impostor.key)
    result = _verify(pyhanko_sign(signer, DOCUMENT), _roots(pki, tmp_path, forged), past_tsa)
    assert result.verdict == "valid", result.reason
    assert result.report["revocation"] == {
        "status": "unknown",
        "at": result.report["revocation"]["at"],
        "crls_used": 0,
        "ocsp_used": 0,
    }


def test_a_crl_that_does_not_list_the_signer_says_good(
    pki: LocalPKI, signer: Identity, past_tsa: Tsa, tmp_path: Path
) -> None:
    other = ((pki.expired_signer, NOW - dt.timedelta(days=2)),)
    result = _verify(
        pyhanko_sign(signer, DOCUMENT), _roots(pki, tmp_path, make_crl(pki.ca, other)), past_tsa
    )
    assert result.verdict == "valid" and result.report["revocation"]["status"] == "good"


def test_the_crl_inside_the_signature_counts_as_well(
    pki: LocalPKI, signer: Identity, past_tsa: Tsa, tmp_path: Path
) -> None:
    crl_roots = _roots(pki, tmp_path, make_crl(pki.ca, ((signer, NOW - dt.timedelta(hours=1)),)))
    signed = parse_signature(pyhanko_sign(signer, DOCUMENT))
    assert cades.add_crls(signed, load_crls(crl_roots)) == 1
    raw = cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
    # No CRL in the trust roots' folder: the signature's own CRL revokes the signer.
    assert _verify(raw, pki.roots, past_tsa).verdict == "revoked-at-signing"


def test_enhancement_refuses_a_signer_revoked_at_signing_time(
    pki: LocalPKI, signer: Identity, past_tsa: Tsa, tmp_path: Path
) -> None:
    roots = _roots(pki, tmp_path, make_crl(pki.ca, ((signer, NOW - dt.timedelta(hours=1)),)))

    bes = pyhanko_sign(signer, DOCUMENT)
    for keep in (True, False):  # False: only the document's hash is kept
        with pytest.raises(EnhanceFailed, match="Refusing to enhance: The signer's certificate"):
            enhance_with(bes, past_tsa, roots, document=DOCUMENT, keep_document=keep)
    stamped = stamped_at(bes, past_tsa, NOW - dt.timedelta(hours=2))  # before the revocation
    enhanced = parse_signature(enhance_with(stamped, past_tsa, roots, document=DOCUMENT).raw)
    assert cades.detect_level(enhanced) == "A"
    assert len(cades._items(enhanced["crls"])) == 1  # the CRL travels with it (LT)


@pytest.mark.usefixtures("trust_the_test_ca")
def test_an_upload_of_a_revoked_signer_ends_in_error_with_the_reason(
    client: TestClient,
    arch: ArchiveClient,
    pki: LocalPKI,
    signer: Identity,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crl = make_crl(pki.ca, ((signer, NOW - dt.timedelta(hours=1)),))
    monkeypatch.setenv("CAIRN_ARCHIVE_TRUST_ROOTS", str(_roots(pki, tmp_path, crl)))
    form = upload_form(arch.storage_id, DOCUMENT, [pyhanko_sign(signer, DOCUMENT)])
    answer = client.post("/api/document/content", headers=arch.key_headers, **form)
    assert answer.status_code == 200, answer.text
    container = answer.json()["data"]
    details = client.get(f"/api/document/{container}", headers=arch.key_headers).json()["data"]
    assert details["status"] == 7  # error
    assert details["statusReason"].startswith("Signature 0: The signer's certificate")
    assert "was revoked on" in details["statusReason"]
    reports = client.get(
        f"/api/v1/archive/containers/{container}/reports", headers=arch.member.headers
    ).json()
    assert reports[0]["verdict"] == "revoked-at-signing"
