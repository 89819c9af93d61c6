"""An archive-time-stamp-v2 already present in an input signature (ETSI TS 101 733 §6.4.1,
Annex K): verified by recomputing its imprint (both encodings the standard allows), kept
unchanged when cairn enhances, covered by the new ATSv3; a tampered one is refused. The v2
attributes here are built by the test itself with asn1crypto, following Annex K."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from asn1crypto import cms

from cairn.archive import cades
from cairn.archive._enhance import EnhanceFailed, enhance_signature, verify_archive_timestamps
from cairn.archive.tsa import Tsa, open_tsa, timestamp_token
from cairn.archive.verify import load_trust_roots, parse_signature
from tests.archive.pki import LocalPKI, pyhanko_sign

DOCUMENT = b"Archived since 2009, with an ATSv2.\n"
DIGEST = hashlib.sha256(DOCUMENT).digest()


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Tsa:
    return open_tsa(tmp_path_factory.mktemp("tsa-data"))


def _with_ats_v2(pki: LocalPKI, tsa: Tsa, *, old_form: bool = False, salt: bytes = b"") -> bytes:
    """A CAdES-T signature with an ATSv2 whose imprint is computed here, by Annex K's list:
    encapContentInfo, the detached content, certificates and crls as encoded, the SignerInfo
    fields up to the signature, then the unsigned attributes ([1] tagged; V1.8.3: bare)."""
    signed = parse_signature(pyhanko_sign(pki.rsa_signer, DOCUMENT))
    cades.add_signature_timestamp(signed, lambda digest: timestamp_token(digest, tsa=tsa))
    signer = signed["signer_infos"][0]
    data = signed["encap_content_info"].dump() + DOCUMENT + signed["certificates"].dump()
    for name in ("version", "sid", "digest_algorithm", "signed_attrs", "signature_algorithm"):
        data += signer[name].dump()
    data += signer["signature"].dump()
    attrs = list(signer["unsigned_attrs"])
    if old_form:
        data += b"".join(a.dump() for a in attrs)
    else:
        data += cms.CMSAttributes(attrs, implicit=1).dump()
    token = timestamp_token(hashlib.sha256(data + salt).digest(), tsa=tsa)
    ats = cms.CMSAttribute({"type": cades.ATS_V2, "values": [token]})
    signer["unsigned_attrs"] = cms.CMSAttributes([*attrs, ats])
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()  # type: ignore[no-any-return]


@pytest.mark.parametrize("old_form", [False, True], ids=["v2.2.1", "v1.8.3"])
def test_an_existing_ats_v2_verifies(pki: LocalPKI, tsa: Tsa, old_form: bool) -> None:
    signed = parse_signature(_with_ats_v2(pki, tsa, old_form=old_form))
    assert cades.detect_level(signed) == "A"
    checks = cades.check_archive_timestamps_v2(signed, DOCUMENT)
    assert [c.problem for c in checks] == [None]
    assert (
        verify_archive_timestamps(signed, DIGEST, [tsa.root], document=DOCUMENT, check_v2=True)
        == []
    )


def test_a_tampered_ats_v2_is_caught(pki: LocalPKI, tsa: Tsa) -> None:
    good = parse_signature(_with_ats_v2(pki, tsa))
    other = cades.check_archive_timestamps_v2(good, b"Another document.\n")
    assert [c.problem for c in other] == ["archive-time-stamp-v2 imprint does not match"]
    wrong = parse_signature(_with_ats_v2(pki, tsa, salt=b"!"))  # a token over other data
    problems = verify_archive_timestamps(
        wrong, DIGEST, [tsa.root], document=DOCUMENT, check_v2=True
    )
    assert problems == ["archive timestamp v2 0: archive-time-stamp-v2 imprint does not match"]
    untrusted = verify_archive_timestamps(good, DIGEST, [], document=DOCUMENT, check_v2=True)
    assert "its token does not verify" in " ".join(untrusted)


def _enhance(pki: LocalPKI, tsa: Tsa, raw: bytes) -> bytes:
    return enhance_signature(
        raw,
        document=DOCUMENT,
        content_sha256=DIGEST,
        make_token=lambda digest: timestamp_token(digest, tsa=tsa),
        tsa_certs=[tsa.cert, tsa.root],
        trust_roots=load_trust_roots(pki.roots),
    ).raw


def test_enhancing_keeps_the_ats_v2_and_covers_it_with_an_ats_v3(
    pki: LocalPKI, tsa: Tsa, tmp_path: Path
) -> None:
    raw = _with_ats_v2(pki, tsa)
    before = list(parse_signature(raw)["signer_infos"][0]["unsigned_attrs"])
    enhanced = parse_signature(_enhance(pki, tsa, raw))
    after = list(enhanced["signer_infos"][0]["unsigned_attrs"])
    assert [a.dump() for a in after[: len(before)]] == [a.dump() for a in before]  # unchanged
    assert [a["type"].dotted for a in after[len(before) :]] == [cades.ATS_V3]  # only what lacks
    assert verify_archive_timestamps(enhanced, DIGEST, [tsa.root]) == []
    (tmp_path / "document.txt").write_bytes(DOCUMENT)
    (tmp_path / "enhanced.sig").write_bytes(
        cms.ContentInfo({"content_type": "signed_data", "content": enhanced}).dump()
    )
    checked = subprocess.run(
        ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", "enhanced.sig",
         "-content", "document.txt", "-CAfile", str(pki.ca.cert_path), "-purpose", "any",
         "-out", "/dev/null"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr


def test_a_signature_with_a_broken_ats_v2_is_not_enhanced(pki: LocalPKI, tsa: Tsa) -> None:
    with pytest.raises(EnhanceFailed, match="archive-time-stamp-v2 imprint does not match"):
        _enhance(pki, tsa, _with_ats_v2(pki, tsa, salt=b"!"))
