"""Signature verification: pyHanko and OpenSSL signatures, detached and attached, and every
stated reason (other content, untrusted signer, expired at signing, GOST, not CMS, base64)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from cairn import hookimpl
from cairn.archive.errors import Base64Signature, NotCms
from cairn.archive.verify import Verification, load_trust_roots, parse_signature, verify_signature
from cairn.plugins import get_plugin_manager
from tests.archive.pki import LocalPKI, openssl_sign, pyhanko_sign

DOCUMENT = b"The minutes of the meeting, signed.\n"


def _verify(pki: LocalPKI, raw: bytes, document: bytes | None = DOCUMENT):  # type: ignore[no-untyped-def]
    return verify_signature(raw, document, trust_roots=load_trust_roots(pki.roots))


def test_trust_roots_folder_reads_pem_and_der_and_skips_other_files(
    pki: LocalPKI, tmp_path: Path
) -> None:
    (tmp_path / "ca.der").write_bytes(pki.ca.asn1_cert.dump())
    (tmp_path / "README").write_text("not a certificate")
    assert len(load_trust_roots(tmp_path)) == 1
    assert len(load_trust_roots(pki.roots)) == 1
    assert load_trust_roots(None) == [] and load_trust_roots(tmp_path / "absent") == []


@pytest.mark.parametrize("who", ["rsa_signer", "ec_signer"])
def test_pyhanko_detached_signature_verifies(pki: LocalPKI, who: str) -> None:
    # rsa_signer has digitalSignature only, ec_signer nonRepudiation only: both accepted.
    result = _verify(pki, pyhanko_sign(getattr(pki, who), DOCUMENT))
    assert result.verdict == "valid", result.reason
    assert result.level == "BES" and not result.attached
    assert result.report["bottom_line"] is True
    assert result.expires == getattr(pki, who).cert.not_valid_after_utc


@pytest.mark.parametrize(
    ("who", "digest", "pss"),
    [
        ("rsa_signer", "sha384", False),
        ("rsa_signer", "sha512", True),
        ("rsa_signer", "sha3_256", True),
        ("ec_signer", "sha3_256", False),
    ],
)
def test_sha2_sha3_and_rsa_pss_verify(pki: LocalPKI, who: str, digest: str, pss: bool) -> None:
    raw = pyhanko_sign(getattr(pki, who), DOCUMENT, digest=digest, prefer_pss=pss)
    result = _verify(pki, raw)
    assert result.verdict == "valid", result.reason
    assert result.report["digest_algorithm"] == digest


def test_pyhanko_attached_signature_verifies_without_document(pki: LocalPKI) -> None:
    result = _verify(pki, pyhanko_sign(pki.rsa_signer, DOCUMENT, detached=False), None)
    assert result.verdict == "valid", result.reason
    assert result.attached


@pytest.mark.parametrize("detached", [True, False])
def test_openssl_signatures_verify(pki: LocalPKI, tmp_path: Path, detached: bool) -> None:
    document = tmp_path / "document.txt"
    document.write_bytes(DOCUMENT)
    raw = openssl_sign(pki.rsa_signer, document, detached=detached)
    result = _verify(pki, raw, DOCUMENT if detached else None)
    assert result.verdict == "valid", result.reason
    assert result.attached is not detached


def test_signature_over_other_content_is_a_content_mismatch(pki: LocalPKI) -> None:
    raw = pyhanko_sign(pki.rsa_signer, b"some other document")
    result = _verify(pki, raw)
    assert result.verdict == "content-mismatch"
    assert "other content" in (result.reason or "")
    # pyHanko's own 'valid' stays True here; the verdict follows bottom_line.
    assert result.report["valid"] is True and result.report["bottom_line"] is False


def test_signer_outside_the_trust_roots_is_untrusted(pki: LocalPKI) -> None:
    result = _verify(pki, pyhanko_sign(pki.stranger_signer, DOCUMENT))
    assert result.verdict == "untrusted"
    assert "trust root" in (result.reason or "")


def test_no_trust_roots_means_nothing_is_trusted(pki: LocalPKI) -> None:
    raw = pyhanko_sign(pki.rsa_signer, DOCUMENT)
    assert verify_signature(raw, DOCUMENT, trust_roots=[]).verdict == "untrusted"


def test_certificate_expired_at_signing_time_is_stated(pki: LocalPKI) -> None:
    result = _verify(pki, pyhanko_sign(pki.expired_signer, DOCUMENT))
    assert result.verdict == "expired-at-signing"
    assert "not valid at signing time" in (result.reason or "")


def _with_digest_oid(raw: bytes, oid: str) -> bytes:
    info = cms.ContentInfo.load(raw)
    signer = info["content"]["signer_infos"][0]
    signer["digest_algorithm"] = {"algorithm": oid}
    info["content"]["digest_algorithms"] = [{"algorithm": oid}]
    return info.dump(force=True)


def test_gost_signature_is_unsupported_not_broken(pki: LocalPKI) -> None:
    raw = _with_digest_oid(pyhanko_sign(pki.rsa_signer, DOCUMENT), "1.2.643.7.1.1.2.2")
    result = _verify(pki, raw)
    assert result.verdict == "unsupported-algorithm"
    assert "GOST" in (result.reason or "") and "1.2.643.7.1.1.2.2" in (result.reason or "")


def test_not_cms_is_refused() -> None:
    with pytest.raises(NotCms):
        parse_signature(b"\x00\x01 definitely not DER")
    with pytest.raises(NotCms):
        parse_signature(b"")


def test_base64_and_pem_signatures_are_refused_clearly(pki: LocalPKI) -> None:
    raw = pyhanko_sign(pki.rsa_signer, DOCUMENT)
    with pytest.raises(Base64Signature, match="base64"):
        parse_signature(base64.encodebytes(raw))
    pem = b"-----BEGIN CMS-----\n" + base64.encodebytes(raw) + b"-----END CMS-----\n"
    with pytest.raises(Base64Signature):
        parse_signature(pem)


def test_signed_attributes_not_der_sorted_are_accepted_and_reported(pki: LocalPKI) -> None:
    """The lenient policy (pyHanko's, not EU DSS's): an RSA signature made over signed
    attributes in non-DER order verifies, and the report says the order was not DER."""
    raw = pyhanko_sign(pki.rsa_signer, DOCUMENT)
    signer = cms.ContentInfo.load(raw)["content"]["signer_infos"][0]
    encoded = [attr.dump() for attr in signer["signed_attrs"]]
    assert encoded == sorted(encoded)  # pyHanko writes DER order; reverse it, same length
    reordered = b"".join(reversed(encoded))
    old_signature = signer["signature"].native
    new_signature = pki.rsa_signer.key.sign(  # type: ignore[call-arg,union-attr]
        b"\x31"
        + signer["signed_attrs"].dump()[1 : len(signer["signed_attrs"].dump()) - len(reordered)]
        + reordered,
        padding.PKCS1v15(),  # type: ignore[arg-type]
        hashes.SHA256(),
    )
    tampered = raw.replace(b"".join(encoded), reordered).replace(old_signature, new_signature)
    result = _verify(pki, tampered)
    assert result.verdict == "valid", result.reason
    assert result.report["der_sorted_signed_attributes"] is False


class GostVerifier:
    """A deployment's verifier plugin, as one adding GOST would be registered. The GOST
    cryptography itself is outside cairn; this one checks what cairn hands it and answers."""

    def __init__(self, verdict: str | None) -> None:
        self.verdict = verdict
        self.seen: list[tuple[list[str], bool, bool]] = []

    @hookimpl
    def verify_archive_signature(
        self, signature: bytes, document: object, algorithms: list[str], attached: bool
    ) -> Verification | None:
        self.seen.append((algorithms, document == DOCUMENT, attached))
        if self.verdict == "raise":
            raise RuntimeError("GOST token not plugged in")
        if self.verdict is None or "1.2.643.7.1.1.2.2" not in algorithms:
            return None
        return Verification(
            verdict=self.verdict, reason=None, level="BES", attached=attached, signer="GOST CA"
        )


@pytest.mark.parametrize("verdict", ["valid", "broken", None, "raise"])
def test_a_verifier_plugin_decides_on_gost(pki: LocalPKI, verdict: str | None) -> None:
    raw = _with_digest_oid(pyhanko_sign(pki.rsa_signer, DOCUMENT), "1.2.643.7.1.1.2.2")
    plugin = GostVerifier(verdict)
    manager = get_plugin_manager()
    manager.register(plugin, name="test-gost-verifier")
    try:
        result = _verify(pki, raw)
    finally:
        manager.unregister(plugin)
    assert plugin.seen and plugin.seen[0][1:] == (True, False)
    assert "1.2.643.7.1.1.2.2" in plugin.seen[0][0]
    if verdict in ("valid", "broken"):
        assert result.verdict == verdict and result.signer == "GOST CA"
    else:
        assert result.verdict == "unsupported-algorithm"
        failed = "A verifier plugin failed" in (result.reason or "")
        assert failed == (verdict == "raise"), result.reason
    assert _verify(pki, raw).verdict == "unsupported-algorithm"  # once unregistered


def test_trust_roots_are_parsed_once_and_reread_when_the_folder_changes(tmp_path: Path) -> None:
    from tests.archive.pki import make_pki

    first, second = make_pki(tmp_path / "a"), make_pki(tmp_path / "b")
    folder = tmp_path / "roots"
    folder.mkdir()
    root_a, root_b = first.roots / "ca.pem", second.roots / "ca.pem"
    (folder / "ca.pem").write_bytes(root_a.read_bytes())
    loaded = load_trust_roots(folder)
    again = load_trust_roots(folder)
    assert again == loaded and again is not loaded  # a fresh list: callers may extend it
    assert again[0] is loaded[0]  # ...of the objects parsed once
    (folder / "ca.pem").write_bytes(root_b.read_bytes())  # same name, other bytes
    changed = load_trust_roots(folder)
    assert [c.dump() for c in changed] != [c.dump() for c in loaded]
