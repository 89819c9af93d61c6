"""CAdES levels and the in-house archive-time-stamp-v3: build, verify an existing one, catch
tampering, re-stamp; the enhanced signature still verifies with pyHanko and OpenSSL."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from asn1crypto import cms

from cairn.archive import cades
from cairn.archive._enhance import EnhanceFailed, enhance_signature, verify_archive_timestamps
from cairn.archive.tsa import Tsa, open_tsa, timestamp_token
from cairn.archive.verify import load_trust_roots, parse_signature, verify_signature
from tests.archive.pki import LocalPKI, pyhanko_sign

DOCUMENT = b"Keep me for thirty years.\n"
DIGEST = hashlib.sha256(DOCUMENT).digest()


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Tsa:
    return open_tsa(tmp_path_factory.mktemp("tsa-data"))


def _enhance(pki: LocalPKI, tsa: Tsa, raw: bytes, document: bytes | None = DOCUMENT) -> bytes:
    result = enhance_signature(
        raw,
        document=document,
        content_sha256=DIGEST,
        make_token=lambda digest: timestamp_token(digest, tsa=tsa),
        tsa_certs=[tsa.cert, tsa.root],
        trust_roots=load_trust_roots(pki.roots),
    )
    assert result.level == "A"
    return result.raw


def test_bes_is_enhanced_to_a_and_still_verifies(pki: LocalPKI, tsa: Tsa, tmp_path: Path) -> None:
    raw = pyhanko_sign(pki.rsa_signer, DOCUMENT)
    assert cades.detect_level(parse_signature(raw)) == "BES"
    enhanced = _enhance(pki, tsa, raw)
    signed = parse_signature(enhanced)
    types = cades.unsigned_attr_types(signed["signer_infos"][0])
    assert types.count(cades.SIGNATURE_TIME_STAMP) == 1 and types.count(cades.ATS_V3) == 1
    result = verify_signature(
        enhanced, DOCUMENT, trust_roots=load_trust_roots(pki.roots), tsa_roots=[tsa.root]
    )
    assert result.verdict == "valid", result.reason
    assert result.report["signature_timestamp"]["trusted"] is True
    assert verify_archive_timestamps(signed, DIGEST, [tsa.root]) == []
    # OpenSSL, an independent verifier, accepts the enhanced signature over the document.
    (tmp_path / "doc").write_bytes(DOCUMENT)
    (tmp_path / "sig").write_bytes(enhanced)
    checked = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", "sig",
         "-content", "doc", "-CAfile", str(pki.ca.cert_path), "-purpose", "any",
         "-out", "/dev/null"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr


def test_the_hash_index_covers_certificates_and_earlier_attributes(pki: LocalPKI, tsa: Tsa) -> None:
    signed = parse_signature(_enhance(pki, tsa, pyhanko_sign(pki.rsa_signer, DOCUMENT)))
    ats = next(
        a for a in cades._unsigned(signed["signer_infos"][0]) if a["type"].dotted == cades.ATS_V3
    )
    token = cms.ContentInfo.load(ats["values"][0].dump())
    found = cades._token_index(token)
    assert found is not None
    index, index_der = found
    certs = [c for c in signed["certificates"]]
    assert [h.native for h in index["certificates_hash_index"]] == [
        hashlib.sha256(c.dump()).digest() for c in certs
    ]
    stamp = next(
        a for a in cades._unsigned(signed["signer_infos"][0])
        if a["type"].dotted == cades.SIGNATURE_TIME_STAMP
    )  # fmt: skip
    expected = hashlib.sha256(stamp["type"].dump() + stamp["values"][0].dump()).digest()
    assert [h.native for h in index["unsigned_attr_values_hash_index"]] == [expected]
    # The message imprint, recomputed by hand from the spec's parts.
    si = signed["signer_infos"][0]
    parts = signed["encap_content_info"]["content_type"].dump() + DIGEST
    parts += b"".join(
        si[n].dump()
        for n in (
            "version",
            "sid",
            "digest_algorithm",
            "signed_attrs",
            "signature_algorithm",
            "signature",
        )
    )
    parts += index_der
    info = token["content"]["encap_content_info"]["content"].parsed
    assert info["message_imprint"]["hashed_message"].native == hashlib.sha256(parts).digest()


def test_other_content_or_a_removed_certificate_breaks_the_archive_timestamp(
    pki: LocalPKI, tsa: Tsa
) -> None:
    enhanced = _enhance(pki, tsa, pyhanko_sign(pki.rsa_signer, DOCUMENT))
    other = hashlib.sha256(b"Bye World").digest()
    problems = verify_archive_timestamps(parse_signature(enhanced), other, [tsa.root])
    assert problems and "message imprint" in problems[0]
    signed = parse_signature(enhanced)
    signed["certificates"] = cms.CertificateSet(list(signed["certificates"])[:-1])
    problems = verify_archive_timestamps(signed, DIGEST, [tsa.root])
    assert problems and "missing or changed" in problems[0]
    # ...and enhancement refuses such a signature instead of stamping over it.
    tampered = cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
    with pytest.raises(EnhanceFailed, match="Refusing to enhance"):
        _enhance(pki, tsa, tampered)


def test_a_token_from_an_untrusted_tsa_is_reported(pki: LocalPKI, tsa: Tsa) -> None:
    enhanced = _enhance(pki, tsa, pyhanko_sign(pki.rsa_signer, DOCUMENT))
    problems = verify_archive_timestamps(parse_signature(enhanced), DIGEST, [])
    assert problems == ["archive timestamp 0: its token does not verify"]


def test_restamping_adds_an_ats_covering_the_earlier_one(pki: LocalPKI, tsa: Tsa) -> None:
    once = _enhance(pki, tsa, pyhanko_sign(pki.rsa_signer, DOCUMENT))
    twice = _enhance(pki, tsa, once)
    signed = parse_signature(twice)
    types = cades.unsigned_attr_types(signed["signer_infos"][0])
    assert types.count(cades.ATS_V3) == 2
    assert types.count(cades.SIGNATURE_TIME_STAMP) == 1  # kept, not added again
    assert verify_archive_timestamps(signed, DIGEST, [tsa.root]) == []
    first = next(
        a for a in cades._unsigned(parse_signature(once)["signer_infos"][0])
        if a["type"].dotted == cades.ATS_V3
    )  # fmt: skip
    covered = hashlib.sha256(first["type"].dump() + first["values"][0].dump()).digest()
    newest = [
        a for a in cades._unsigned(signed["signer_infos"][0]) if a["type"].dotted == cades.ATS_V3
    ]
    indexes = [cades._token_index(cms.ContentInfo.load(a["values"][0].dump())) for a in newest]
    assert any(
        covered in [h.native for h in i[0]["unsigned_attr_values_hash_index"]]
        for i in indexes
        if i is not None
    )


def test_attached_signatures_are_enhanced_too(pki: LocalPKI, tsa: Tsa) -> None:
    raw = pyhanko_sign(pki.ec_signer, DOCUMENT, detached=False)
    enhanced = _enhance(pki, tsa, raw, None)
    result = verify_signature(
        enhanced, None, trust_roots=load_trust_roots(pki.roots), tsa_roots=[tsa.root]
    )
    assert result.verdict == "valid" and result.attached
    assert "signature_timestamp" in result.report  # checked inside attached signatures too


IMPORTED_LATE = """
import sys
from asn1crypto import cms
cms.CMSAttribute({"type": "content_type", "values": ["data"]})  # asn1crypto sets the class up
import cairn.archive.cades  # registers the archive attributes afterwards (imported lazily)
cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": "260101000000Z"})]})
attr = cms.CMSAttribute({"type": "archive_time_stamp_v3", "values": []})
print(attr["type"].dotted)
"""


def test_cades_can_be_imported_after_asn1crypto_made_attributes() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORTED_LATE], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == cades.ATS_V3
