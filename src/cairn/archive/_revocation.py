"""Was the signer's certificate revoked at signing time? Checked against the CRLs at hand.

pyhanko-certvalidator consults CRLs passed to a ``ValidationContext`` only for certificates
that name a CRL or OCSP source (a distribution point or an AIA entry), and many signer
certificates name none, so a revoked signer passed as valid (issue #17). cairn checks the
CRLs itself: those in the trust roots' folder (``CAIRN_ARCHIVE_TRUST_ROOTS``) and those the
signature already carries (``SignedData.crls``). A CRL counts only when its issuer is the
certificate's issuer and its signature verifies with the key of a certificate that also
signed the signer's certificate (names alone are not enough: test PKIs reuse CA names).

The time compared is the best proof of signing time: a signature timestamp's genTime, else
the moment of verification. The claimed ``signing-time`` attribute is the signer's own word
and proves nothing: a signature without a timestamp whose certificate is revoked now is
refused, whatever time it claims.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import crl as asn1_crl  # type: ignore[import-untyped]
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from cairn.archive._ocsp import ocsp_status

__all__ = [
    "Revocation",
    "certificate_path",
    "check_revocation",
    "load_certificate",
    "signed_by",
    "valid_issuers",
]
MAX_PATH = 10  # certificates above a signer; deeper than any real PKI


@dataclass(frozen=True)
class Revocation:
    """What the CRLs at hand say about one certificate at one moment."""

    # revoked (at or before ``at``) | revoked-later | good | unknown (no usable CRL)
    status: str
    at: datetime
    revoked_at: datetime | None = None
    reason: str | None = None  # the CRL entry's reason code, when it gives one
    crls: int = 0  # the usable CRLs (issued and signed by the certificate's issuer)
    ocsp: int = 0  # the usable OCSP responses (about it, signed for its issuer)

    def report(self) -> dict[str, object]:
        found: dict[str, object] = {"status": self.status, "at": self.at.isoformat()}
        found["crls_used"] = self.crls
        found["ocsp_used"] = self.ocsp
        if self.revoked_at is not None:
            found["revoked_at"] = self.revoked_at.isoformat()
        if self.reason is not None:
            found["reason"] = self.reason
        return found


def load_certificate(cert: asn1_x509.Certificate) -> x509.Certificate:
    """The certificate in cryptography's form."""
    return x509.load_der_x509_certificate(cert.dump())


def valid_issuers(
    cert: x509.Certificate, candidates: Sequence[x509.Certificate]
) -> list[x509.Certificate]:
    """The candidates whose key signed ``cert`` under its issuer's name."""
    found = []
    for candidate in candidates:
        if candidate.subject != cert.issuer:
            continue  # cannot have issued it; saves a signature check
        try:
            cert.verify_directly_issued_by(candidate)
        except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
            continue
        found.append(candidate)
    return found


def signed_by(crl: x509.CertificateRevocationList, issuers: Sequence[x509.Certificate]) -> bool:
    """Whether the key of one of ``issuers`` signed ``crl``."""
    for issuer in issuers:
        try:
            if crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
                return True
        except (TypeError, ValueError, UnsupportedAlgorithm):
            continue
    return False


def _reason(entry: x509.RevokedCertificate) -> str | None:
    try:
        value = entry.extensions.get_extension_for_class(x509.CRLReason).value
    except x509.ExtensionNotFound:
        return None
    return str(value.reason.value)


def check_revocation(
    cert: asn1_x509.Certificate,
    *,
    at: datetime,
    certificates: Sequence[asn1_x509.Certificate],
    crls: Sequence[asn1_crl.CertificateList],
    ocsp: Sequence[bytes] = (),
) -> Revocation:
    """Whether ``cert`` was revoked at ``at`` by any usable CRL among ``crls`` or OCSP
    response (DER) among ``ocsp``; its issuer is looked for among ``certificates`` (trust
    roots and the signature's own)."""
    if not crls and not ocsp:
        return Revocation("unknown", at)  # nothing to consult
    signer = load_certificate(cert)
    issuers = valid_issuers(signer, [load_certificate(c) for c in certificates])
    usable, earliest, reason = 0, None, None
    for raw in crls:
        try:
            crl = x509.load_der_x509_crl(raw.dump())
        except ValueError:
            continue  # not parseable by cryptography: not evidence either way
        if crl.issuer != signer.issuer or not signed_by(crl, issuers):
            continue
        usable += 1
        entry = crl.get_revoked_certificate_by_serial_number(signer.serial_number)
        if entry is None or _reason(entry) == "removeFromCRL":
            continue
        if earliest is None or entry.revocation_date_utc < earliest:
            earliest, reason = entry.revocation_date_utc, _reason(entry)
    answered = 0
    for raw_response in ocsp:
        found = ocsp_status(raw_response, cert, certificates)
        if found is None:
            continue
        answered += 1
        if found.revoked_at is not None and (earliest is None or found.revoked_at < earliest):
            earliest, reason = found.revoked_at, None
    if earliest is not None:
        status = "revoked" if earliest <= at else "revoked-later"
        return Revocation(status, at, earliest, reason, usable, answered)
    return Revocation("good" if usable or answered else "unknown", at, crls=usable, ocsp=answered)


def certificate_path(
    cert: asn1_x509.Certificate, pool: Sequence[asn1_x509.Certificate]
) -> list[asn1_x509.Certificate]:
    """``cert`` and the CAs above it, each found in ``pool`` by its signature (not by name:
    test PKIs reuse names), up to but without a self-issued root: the certificates whose
    revocation counts. Empty for a self-issued ``cert``; it ends where no issuer is found."""
    loaded = [(c, load_certificate(c)) for c in pool]
    path: list[asn1_x509.Certificate] = []
    current, seen = cert, set()
    while len(path) <= MAX_PATH and current.dump() not in seen:
        seen.add(current.dump())
        mine = load_certificate(current)
        if mine.issuer == mine.subject:
            break  # self-issued, a root: trusted or not, no CRL of its own revokes it
        path.append(current)
        above = [c for c, x in loaded if c.dump() != current.dump() and valid_issuers(mine, [x])]
        if not above:
            break
        current = above[0]
    return path
