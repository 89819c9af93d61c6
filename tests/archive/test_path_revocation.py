"""Revocation beyond the signer: every certificate of the signer's path (an intermediate CA)
and of the signature timestamp's TSA path is checked at signing time, at upload and when
enhancing; the reason names the certificate that was revoked.

Real certificates and CRLs from the test PKI (``cryptography``), the CRLs at hand in the
trust roots' folder, as a deployment keeps them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

from cairn.archive._enhance import EnhanceFailed
from cairn.archive.verify import load_crls, load_trust_roots, verify_signature
from tests.archive.helpers import enhance_with, pki_tsa, stamped_at
from tests.archive.pki import Identity, LocalPKI, make_crl, make_identity, pyhanko_sign

DOCUMENT = b"A chain is as good as its weakest link.\n"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class Chain:
    roots: Path  # the trust roots' folder: the CA and the CRLs at hand
    intermediate: Identity
    signer: Identity


def _chain(pki: LocalPKI, folder: Path, *, revoked_at: dt.datetime | None) -> Chain:
    """CA -> intermediate CA -> signer; the CA's CRL lists the intermediate (``revoked_at``)
    or no one, and the intermediate's CRL lists no one."""
    intermediate = make_identity(folder, "intermediate", issuer=pki.ca, ca=True)
    signer = make_identity(folder, "leaf-signer", issuer=intermediate)
    roots = folder / "roots"
    roots.mkdir()
    (roots / "ca.pem").write_bytes(pki.ca.cert_path.read_bytes())
    listed = ((intermediate, revoked_at),) if revoked_at else ()
    (roots / "ca.crl").write_bytes(make_crl(pki.ca, listed))
    (roots / "intermediate.crl").write_bytes(make_crl(intermediate))
    return Chain(roots, intermediate, signer)


def _sign(chain: Chain) -> bytes:
    return pyhanko_sign(chain.signer, DOCUMENT, extra_certs=(chain.intermediate,))


def test_a_revoked_intermediate_refuses_enhancement_naming_it(
    pki: LocalPKI, tmp_path: Path
) -> None:
    chain = _chain(pki, tmp_path, revoked_at=NOW - dt.timedelta(hours=1))
    with pytest.raises(EnhanceFailed) as refused:
        enhance_with(_sign(chain), pki_tsa(pki), chain.roots, document=DOCUMENT)
    reason = str(refused.value)
    assert reason.startswith("Refusing to enhance: The intermediate CA's certificate (")
    assert chain.intermediate.asn1_cert.subject.human_friendly in reason
    assert f"serial {chain.intermediate.cert.serial_number}" in reason


def test_a_good_path_is_enhanced_and_reported(pki: LocalPKI, tmp_path: Path) -> None:
    chain = _chain(pki, tmp_path, revoked_at=None)
    tsa = pki_tsa(pki)
    enhanced = enhance_with(_sign(chain), tsa, chain.roots, document=DOCUMENT)
    result = verify_signature(
        enhanced.raw,
        DOCUMENT,
        trust_roots=load_trust_roots(chain.roots),
        tsa_roots=[tsa.root],
        crls=load_crls(chain.roots),
    )
    assert result.verdict == "valid", result.reason
    assert result.report["revocation"]["status"] == "good"  # the signer, by the intermediate's CRL
    roles = {e["role"]: e["status"] for e in result.report["path_revocation"]}
    assert roles == {"intermediate CA": "good", "timestamp TSA": "good"}


def test_an_intermediate_revoked_after_the_signature_timestamp_stays_valid(
    pki: LocalPKI, tmp_path: Path
) -> None:
    chain = _chain(pki, tmp_path, revoked_at=NOW - dt.timedelta(hours=1))
    tsa = pki_tsa(pki)
    raw = stamped_at(_sign(chain), tsa, NOW - dt.timedelta(hours=2))
    enhanced = enhance_with(raw, tsa, chain.roots, document=DOCUMENT)
    assert "archive-time-stamp-v3" in enhanced.added


def test_upload_verification_names_the_revoked_intermediate(pki: LocalPKI, tmp_path: Path) -> None:
    chain = _chain(pki, tmp_path, revoked_at=NOW - dt.timedelta(hours=1))
    result = verify_signature(
        _sign(chain),
        DOCUMENT,
        trust_roots=load_trust_roots(chain.roots),
        crls=load_crls(chain.roots),
    )
    assert result.verdict == "revoked-at-signing"
    assert result.reason is not None and "intermediate CA's certificate" in result.reason
    assert chain.intermediate.asn1_cert.subject.human_friendly in result.reason
    [entry] = [e for e in result.report["path_revocation"] if e["role"] == "intermediate CA"]
    assert entry["status"] == "revoked"


def test_a_signature_timestamp_by_a_revoked_tsa_refuses_enhancement(
    pki: LocalPKI, tmp_path: Path
) -> None:
    tsa = pki_tsa(pki)  # the test PKI's TSA, issued by the CA
    roots = tmp_path / "roots"
    roots.mkdir()
    (roots / "ca.pem").write_bytes(pki.ca.cert_path.read_bytes())
    (roots / "ca.crl").write_bytes(make_crl(pki.ca, ((pki.tsa, NOW - dt.timedelta(hours=3)),)))
    raw = stamped_at(pyhanko_sign(pki.rsa_signer, DOCUMENT), tsa, NOW - dt.timedelta(hours=2))
    with pytest.raises(EnhanceFailed) as refused:
        enhance_with(raw, tsa, roots, document=DOCUMENT)
    reason = str(refused.value)
    assert "The timestamp TSA's certificate (" in reason
    assert pki.tsa.asn1_cert.subject.human_friendly in reason
