"""OCSP for LT: asking the responder a signer's certificate names, checking the answer, and
reading the status out of the responses a signature carries.

A response counts only when it is successful, is about this certificate (serial and issuer
key hash) and is signed by the certificate's issuer or by a responder certificate that
issuer signed for OCSP signing (RFC 6960 §4.2.2.2); anything else is no evidence. Responses
travel in ``SignedData.crls`` as ``OtherRevocationInfoFormat`` ``id-ri-ocsp-response``
(RFC 5940), where the archive timestamp's hash index covers them like the CRLs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx
from asn1crypto import cms, core  # type: ignore[import-untyped]
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

__all__ = [
    "OcspStatus",
    "add_ocsp_responses",
    "as_revocation_info",
    "fetch_ocsp",
    "ocsp_responses",
    "ocsp_status",
    "ocsp_urls",
]

log = logging.getLogger(__name__)
TIMEOUT = 10.0


@dataclass(frozen=True)
class OcspStatus:
    """What one checked response says: good, revoked (with the time) or unknown."""

    status: str
    revoked_at: datetime | None
    produced_at: datetime


def _load(cert: asn1_x509.Certificate) -> x509.Certificate:
    return x509.load_der_x509_certificate(cert.dump())


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    """The OCSP responders the certificate names (its AIA extension), http(s) only."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        str(d.access_location.value)
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
        and str(d.access_location.value).startswith(("http://", "https://"))
    ]


def _verifies(key: object, signature: bytes, data: bytes, algorithm: object) -> bool:
    if not isinstance(algorithm, hashes.HashAlgorithm):
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


def _signed_by_issuer(response: ocsp.OCSPResponse, issuer: x509.Certificate) -> bool:
    """Signed by the issuer, or by a responder certificate the issuer delegated OCSP to."""
    data, signature = response.tbs_response_bytes, response.signature
    algorithm = response.signature_hash_algorithm
    if _verifies(issuer.public_key(), signature, data, algorithm):
        return True
    for responder in response.certificates:
        try:
            responder.verify_directly_issued_by(issuer)
            usage = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (
            ValueError,
            TypeError,
            InvalidSignature,
            UnsupportedAlgorithm,
            x509.ExtensionNotFound,
        ):
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING in usage and _verifies(
            responder.public_key(), signature, data, algorithm
        ):
            return True
    return False


def _about(response: ocsp.OCSPResponse, cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """The response's CertID names ``cert`` as issued by ``issuer`` (serial and key hash)."""
    if response.serial_number != cert.serial_number:
        return False
    same = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, response.hash_algorithm).build()
    return same.issuer_key_hash == response.issuer_key_hash


def ocsp_status(
    raw: bytes, cert: asn1_x509.Certificate, issuers: Sequence[asn1_x509.Certificate]
) -> OcspStatus | None:
    """The status a DER OCSPResponse gives ``cert``, if it is a checked answer about it
    signed for one of ``issuers``; None when it is no evidence."""
    try:
        response = ocsp.load_der_ocsp_response(raw)
    except ValueError:
        return None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return None
    target = _load(cert)
    for issuer in (_load(i) for i in issuers):
        if issuer.subject != target.issuer:
            continue
        try:
            about = _about(response, target, issuer)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        if about and _signed_by_issuer(response, issuer):
            status = response.certificate_status
            name = {
                ocsp.OCSPCertStatus.GOOD: "good",
                ocsp.OCSPCertStatus.REVOKED: "revoked",
            }.get(status, "unknown")
            revoked_at = response.revocation_time_utc if name == "revoked" else None
            return OcspStatus(name, revoked_at, response.produced_at_utc)
    return None


def fetch_ocsp(
    cert: asn1_x509.Certificate, issuers: Sequence[asn1_x509.Certificate]
) -> bytes | None:
    """A checked OCSP response (DER) about ``cert`` from a responder it names; None when it
    names none, the responder fails or its answer is no evidence (logged, never raised:
    enhancement then goes on with the CRLs at hand)."""
    target = _load(cert)
    issuer = next(
        (i for i in map(_load, issuers) if i.subject == target.issuer and _issued(target, i)),
        None,
    )
    if issuer is None:
        return None
    # SHA-1 CertIDs are what RFC 5019 responders are required to understand.
    request = ocsp.OCSPRequestBuilder().add_certificate(target, issuer, hashes.SHA1()).build()
    for url in ocsp_urls(target):
        try:
            answer = httpx.post(
                url,
                content=request.public_bytes(serialization.Encoding.DER),
                headers={"Content-Type": "application/ocsp-request"},
                timeout=TIMEOUT,
            )
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("OCSP responder %s failed: %s", url, exc)
            continue
        if ocsp_status(answer.content, cert, issuers) is not None:
            return answer.content
        log.warning("OCSP responder %s answered no usable response", url)
    return None


def _issued(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def ocsp_responses(signed: cms.SignedData) -> list[bytes]:
    """The DER OCSP responses ``SignedData.crls`` carries (id-ri-ocsp-response)."""
    found = []
    value = signed["crls"]
    for choice in [] if isinstance(value, core.Void) else value:
        if (
            choice.name == "other"
            and choice.chosen["other_rev_info_format"].native == "ocsp_response"
        ):
            found.append(choice.chosen["other_rev_info"].dump())
    return found


def as_revocation_info(raw: bytes) -> cms.RevocationInfoChoice:
    """A DER OCSPResponse as a ``SignedData.crls`` entry (RFC 5940)."""
    other = cms.OtherRevocationInfoFormat(
        {
            "other_rev_info_format": "ocsp_response",
            "other_rev_info": asn1_ocsp.OCSPResponse.load(raw),
        }
    )
    return cms.RevocationInfoChoice(name="other", value=other)


def add_ocsp_responses(signed: cms.SignedData, responses: Sequence[bytes]) -> int:
    """LT: OCSP responses in ``SignedData.crls`` (each once); how many were added."""
    known = set(ocsp_responses(signed))
    added = [raw for raw in dict.fromkeys(responses) if raw not in known]
    if added:
        present = [] if isinstance(signed["crls"], core.Void) else list(signed["crls"])
        signed["crls"] = cms.RevocationInfoChoices(
            [*present, *(as_revocation_info(raw) for raw in added)]
        )
    return len(added)
