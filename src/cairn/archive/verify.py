"""Verifying detached and attached CMS/CAdES signatures with pyHanko and pyhanko-certvalidator.

Decisions (issue #17):
- The verdict is pyHanko's ``bottom_line``, never ``valid`` alone: ``valid`` only covers the
  signature over the signed attributes and stays True over tampered content.
- Signer certificates with key usage digitalSignature OR nonRepudiation are accepted (pyHanko
  demands nonRepudiation by default; most real signing certificates carry digitalSignature).
- GOST R 34.10/34.11 signatures get the verdict ``unsupported-algorithm``, never ``broken``:
  no library here implements GOST; a plugin may (hook ``verify_archive_signature``).
- Signed attributes that are not DER-sorted: lenient, like pyHanko (the signature is checked
  over the bytes as received). EU DSS is strict; cairn records the choice in the report.
- A signature timestamp, attached or detached signature alike, is checked, and the signer's
  certificate must have been valid at the time it proves (or the claimed signing time).
- A signer revoked at signing time (the signature timestamp's time, else now: the claimed
  signing time proves nothing) by a CRL at hand gets ``revoked-at-signing``; one revoked
  later stays valid, the report says when (``archive._revocation``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from asn1crypto import cms, tsp  # type: ignore[import-untyped]
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes
from pyhanko.sign.validation import generic_cms
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import StandardCMSSignatureStatus
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.util import get_pyca_cryptography_hash

from cairn.archive._ocsp import ocsp_responses
from cairn.archive._revocation import certificate_path, check_revocation
from cairn.archive._roots import load_crls, load_trust_roots
from cairn.archive.cades import SIGNATURE_TIME_STAMP, _items, detect_level
from cairn.archive.errors import Base64Signature, NotCms

__all__ = [
    "GOST_PREFIXES",
    "Verification",
    "load_crls",
    "load_trust_roots",
    "parse_signature",
    "path_revocations",
    "revocation_path",
    "revoked_at_signing",
    "signer_certificate",
    "verify_signature",
]

# GOST R 34.10-2001/2012 and 34.11-2012 live under the Russian arc 1.2.643 (CryptoPro: 1.2.643.2.2).
GOST_PREFIXES = ("1.2.643.",)
KEY_USAGE = KeyUsageConstraints(
    key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False
)
_BASE64 = re.compile(rb"^[A-Za-z0-9+/=\s]+$")


@dataclass
class Verification:
    """The outcome of verifying one signature; ``report`` is stored as JSON evidence."""

    # valid | untrusted | content-mismatch | broken | expired-at-signing | revoked-at-signing
    # | unsupported-algorithm
    verdict: str
    reason: str | None
    level: str
    attached: bool
    signer: str | None = None
    signed_at: datetime | None = None
    expires: datetime | None = None
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.verdict == "valid"


def parse_signature(raw: bytes) -> cms.SignedData:
    """The SignedData of a binary DER/BER CMS signature; refuses base64, PEM and other bytes."""
    if not raw:
        raise NotCms("A signature is empty.")
    if raw.lstrip().startswith(b"-----BEGIN"):
        raise Base64Signature(
            "Signatures in base64 (PEM) are not accepted: send the binary DER file."
        )
    try:
        info = cms.ContentInfo.load(raw, strict=True)
        content_type = info["content_type"].native
        signed = info["content"]
        if content_type != "signed_data" or not isinstance(signed, cms.SignedData):
            raise NotCms(f"Not a CMS signature: the content type is {content_type}.")
        signed["signer_infos"][0]["signature"].native  # noqa: B018 (parses the signer)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        if _BASE64.match(raw[:4096]) and _decodes_as_base64(raw):
            raise Base64Signature(
                "Signatures in base64 are not accepted: send the binary DER file."
            ) from None
        raise NotCms("Not a CMS signature (not DER-encoded SignedData).") from exc
    return signed


def _decodes_as_base64(raw: bytes) -> bool:
    try:
        base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _algorithms(signed: cms.SignedData) -> list[str]:
    signer = signed["signer_infos"][0]
    found = [signer["digest_algorithm"]["algorithm"].dotted]
    found.append(signer["signature_algorithm"]["algorithm"].dotted)
    for cert in signed["certificates"] or []:
        if cert.name == "certificate":
            found.append(cert.chosen["signature_algorithm"]["algorithm"].dotted)
            found.append(cert.chosen.public_key["algorithm"]["algorithm"].dotted)
    return found


def signer_certificate(signed: cms.SignedData) -> asn1_x509.Certificate | None:
    """The signer's certificate, found in the signature by its SignerIdentifier."""
    sid = signed["signer_infos"][0]["sid"]
    for choice in signed["certificates"] or []:
        if choice.name != "certificate":
            continue
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            if (
                cert.issuer == sid.chosen["issuer"]
                and cert.serial_number == sid.chosen["serial_number"].native
            ):
                return cert
        elif cert.key_identifier == sid.chosen.native:
            return cert
    return None


def _timestamp_time(signer_info: cms.SignerInfo) -> datetime | None:
    """genTime of the signature timestamp, read without trusting it (pyHanko checks it)."""
    for attr in signer_info["unsigned_attrs"] or []:
        if attr["type"].dotted == SIGNATURE_TIME_STAMP:
            token = attr["values"][0]
            tst_info = token["content"]["encap_content_info"]["content"].parsed
            assert isinstance(tst_info, tsp.TSTInfo)
            gen_time: datetime = tst_info["gen_time"].native
            return gen_time
    return None


def _claimed_time(signer_info: cms.SignerInfo) -> datetime | None:
    for attr in signer_info["signed_attrs"] or []:
        if attr["type"].native == "signing_time":
            value: datetime = attr["values"][0].native
            return value
    return None


def _der_sorted(signer_info: cms.SignerInfo) -> bool:
    attrs = signer_info["signed_attrs"]
    encoded = [attr.dump() for attr in attrs] if attrs else []
    return encoded == sorted(encoded)


def _unsupported(signed: cms.SignedData, level: str, attached: bool) -> Verification | None:
    gost = [oid for oid in _algorithms(signed) if oid.startswith(GOST_PREFIXES)]
    if not gost:
        return None
    return Verification(
        verdict="unsupported-algorithm",
        reason="Unsupported algorithm: GOST R 34.10/34.11 "
        f"({', '.join(sorted(set(gost)))}) cannot be verified by this archive; "
        "a verifier plugin can add it.",
        level=level,
        attached=attached,
        report={"verdict": "unsupported-algorithm", "algorithms": sorted(set(gost))},
    )


def _plugin_verdict(
    raw: bytes, document: bytes | Path | None, unsupported: Verification
) -> Verification | None:
    """A verifier plugin's verdict on a signature cairn cannot verify, if one answers. A plugin
    that fails gives no verdict: the signature stays unsupported, its reason naming the error."""
    from cairn.plugins import PluginError, call_hook

    try:
        answers = call_hook(
            "verify_archive_signature",
            signature=raw,
            document=document,
            algorithms=unsupported.report["algorithms"],
            level=unsupported.level,
            attached=unsupported.attached,
        )
    except PluginError as exc:
        unsupported.reason = f"{unsupported.reason} A verifier plugin failed: {exc}"
        unsupported.report["plugin_error"] = str(exc)
        return None
    found = answers[0] if answers else None  # the latest registered plugin that answered
    if found is not None and not isinstance(found, Verification):
        unsupported.reason = f"{unsupported.reason} A verifier plugin answered {found!r}."
        return None
    return found


def verify_signature(
    raw: bytes,
    document: bytes | Path | None,
    *,
    trust_roots: list[asn1_x509.Certificate],
    tsa_roots: list[asn1_x509.Certificate] | None = None,
    crls: Sequence[asn1_crl.CertificateList] = (),
    now: datetime | None = None,
) -> Verification:
    """Verify one signature over ``document`` (``None`` for an attached signature, whose
    encapsulated content is then the document). ``tsa_roots`` are trusted for timestamps
    only (cairn's own TSA root); ``crls`` (with those in the signature) decide whether the
    signer was revoked at signing time. Never raises for a bad signature: the
    verdict says what is wrong; unparseable input raises ``NotCms`` / ``Base64Signature``."""
    signed = parse_signature(raw)
    content = signed["encap_content_info"]["content"]
    attached = content.native is not None
    level = detect_level(signed)
    if (early := _unsupported(signed, level, attached)) is not None:
        return _plugin_verdict(raw, document, early) or early
    data = bytes(content.native) if attached else document
    if data is None:
        return Verification(
            verdict="content-mismatch",
            reason="A detached signature needs its document.",
            level=level,
            attached=attached,
        )
    signer_info = signed["signer_infos"][0]
    cert = signer_certificate(signed)
    report: dict[str, Any] = {
        "level": level,
        "attached": attached,
        "der_sorted_signed_attributes": _der_sorted(signer_info),
        "der_policy": "lenient (verified over the signed attributes as received)",
        "digest_algorithm": signer_info["digest_algorithm"]["algorithm"].native,
        "signature_algorithm": signer_info["signature_algorithm"]["algorithm"].native,
        "trust_roots": len(trust_roots),
    }
    if cert is None:
        report["verdict"] = "broken"
        return Verification(
            "broken",
            "The signer's certificate is not in the signature.",
            level,
            attached,
            report=report,
        )
    signer_name = cert.subject.human_friendly
    expires = cert["tbs_certificate"]["validity"]["not_after"].native
    not_before = cert["tbs_certificate"]["validity"]["not_before"].native
    report.update(
        signer=signer_name,
        signer_serial=str(cert.serial_number),
        signer_not_before=not_before.isoformat(),
        signer_not_after=expires.isoformat(),
    )
    stamped_at = _timestamp_time(signer_info)
    signed_at = stamped_at or _claimed_time(signer_info)
    moment = stamped_at or now or datetime.now(UTC)
    if signed_at is not None and not (not_before <= signed_at <= expires):
        report.update(verdict="expired-at-signing", signed_at=signed_at.isoformat())
        return Verification(
            "expired-at-signing",
            f"The signer's certificate ({signer_name}) was not valid at signing time "
            f"{signed_at.isoformat()} (valid {not_before.isoformat()} to {expires.isoformat()}).",
            level,
            attached,
            signer_name,
            signed_at,
            expires,
            report,
        )
    context = ValidationContext(
        trust_roots=trust_roots, allow_fetching=False, revocation_mode="soft-fail", moment=moment
    )
    ts_context = ValidationContext(
        trust_roots=[*trust_roots, *(tsa_roots or [])],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    try:
        if isinstance(data, Path):
            with data.open("rb") as handle:
                status = asyncio.run(_pyhanko_status(signed, handle, attached, context, ts_context))
        else:
            status = asyncio.run(_pyhanko_status(signed, data, attached, context, ts_context))
    except SignatureValidationError as exc:
        report.update(verdict="broken", error=str(exc))
        return Verification(
            "broken",
            f"The signature is malformed: {exc}",
            level,
            attached,
            signer_name,
            signed_at,
            expires,
            report,
        )
    report.update(
        intact=status.intact,
        valid=status.valid,
        trusted=status.trusted,
        bottom_line=status.bottom_line,
        validated_at=moment.isoformat(),
        details=status.pretty_print_details(),  # type: ignore[no-untyped-call]
    )
    if status.timestamp_validity is not None:
        ts = status.timestamp_validity
        report["signature_timestamp"] = {
            "time": ts.timestamp.isoformat(),
            "intact": ts.intact,
            "valid": ts.valid,
            "trusted": ts.trusted,
        }
    verdict, reason = _judge(status, signer_name)
    if verdict == "valid":
        verdict, reason = _revocation_verdict(signed, cert, trust_roots, crls, moment, report)
    report["verdict"] = verdict
    return Verification(verdict, reason, level, attached, signer_name, signed_at, expires, report)


def _timestamp_certificates(
    signer_info: cms.SignerInfo,
) -> tuple[asn1_x509.Certificate | None, list[asn1_x509.Certificate]]:
    """The signature timestamp's TSA certificate (by its SignerIdentifier) and every
    certificate its token carries; (None, []) without a signature timestamp."""
    for attr in signer_info["unsigned_attrs"] or []:
        if attr["type"].dotted == SIGNATURE_TIME_STAMP:
            token = attr["values"][0]["content"]
            certs = [c.chosen for c in _items(token["certificates"]) if c.name == "certificate"]
            return signer_certificate(token), certs
    return None, []


def _roles(
    signed: cms.SignedData,
    cert: asn1_x509.Certificate,
    trust_roots: Sequence[asn1_x509.Certificate],
) -> tuple[list[asn1_x509.Certificate], list[tuple[str, asn1_x509.Certificate]]]:
    """The certificates at hand (trust roots, the signature's, its timestamp token's) and,
    with its role, every certificate whose revocation counts: the signer ``cert`` first, the
    CAs above it, then the signature timestamp's TSA and the CAs above that (paths found by
    signature, roots left out; issue #17)."""
    certs = [c.chosen for c in _items(signed["certificates"]) if c.name == "certificate"]
    tsa, tsa_certs = _timestamp_certificates(signed["signer_infos"][0])
    pool = [*trust_roots, *certs, *tsa_certs]
    roles = [
        ("signer" if i == 0 else "intermediate CA", c)
        for i, c in enumerate(certificate_path(cert, pool) or [cert])
    ]
    if tsa is not None:
        roles += [
            ("timestamp TSA" if i == 0 else "timestamp TSA's intermediate CA", c)
            for i, c in enumerate(certificate_path(tsa, pool))
        ]
    return pool, roles


def path_revocations(
    signed: cms.SignedData,
    cert: asn1_x509.Certificate,
    trust_roots: Sequence[asn1_x509.Certificate],
    crls: Sequence[asn1_crl.CertificateList],
    at: datetime,
) -> list[tuple[str, asn1_x509.Certificate, dict[str, object]]]:
    """The revocation status at ``at`` of every certificate whose revocation counts, with its
    role, the signer first (``_roles``), from ``crls`` and the signature's own CRLs and OCSP
    responses; each status is a report entry, ``revoked`` when it was revoked by then."""
    every = [*crls, *(c.chosen for c in _items(signed["crls"]) if c.name == "crl")]
    ocsp = ocsp_responses(signed)
    if not every and not ocsp:  # nothing to consult: the paths need not be built
        return [("signer", cert, check_revocation(cert, at=at, certificates=[], crls=[]).report())]
    pool, roles = _roles(signed, cert, trust_roots)
    return [
        (role, c, check_revocation(c, at=at, certificates=pool, crls=every, ocsp=ocsp).report())
        for role, c in roles
    ]


def _path_problem(
    entries: list[tuple[str, asn1_x509.Certificate, dict[str, object]]],
) -> str | None:
    """The reason to refuse for the first certificate revoked by then, else None."""
    for role, cert, found in entries:
        if found["status"] == "revoked":
            return revoked_reason(cert, found, role=role)
    return None


def _revocation_verdict(
    signed: cms.SignedData,
    cert: asn1_x509.Certificate,
    trust_roots: Sequence[asn1_x509.Certificate],
    crls: Sequence[asn1_crl.CertificateList],
    at: datetime,
    report: dict[str, Any],
) -> tuple[str, str | None]:
    entries = path_revocations(signed, cert, trust_roots, crls, at)
    report["revocation"] = entries[0][2]  # the signer's
    report["path_revocation"] = [
        {"role": role, "subject": c.subject.human_friendly, "serial": str(c.serial_number)} | found
        for role, c, found in entries[1:]
    ]
    problem = _path_problem(entries)
    return ("valid", None) if problem is None else ("revoked-at-signing", problem)


def revoked_at_signing(
    signed: cms.SignedData,
    *,
    trust_roots: Sequence[asn1_x509.Certificate],
    crls: Sequence[asn1_crl.CertificateList],
    now: datetime | None = None,
) -> str | None:
    """The reason to refuse ``signed`` when a certificate of its signer's path or of its
    signature timestamp's TSA path was revoked at signing time (its signature timestamp's
    time, else ``now``), by ``crls`` or its own CRLs and OCSP responses; else None."""
    cert = signer_certificate(signed)
    if cert is None:
        return None
    at = _timestamp_time(signed["signer_infos"][0]) or now or datetime.now(UTC)
    return _path_problem(path_revocations(signed, cert, trust_roots, crls, at))


def revocation_path(
    signed: cms.SignedData, trust_roots: Sequence[asn1_x509.Certificate]
) -> list[asn1_x509.Certificate]:
    """The certificates whose revocation counts (``_roles``): the ones whose CRL
    distribution points are worth asking."""
    cert = signer_certificate(signed)
    return [] if cert is None else [c for _, c in _roles(signed, cert, trust_roots)[1]]


def revoked_reason(
    cert: asn1_x509.Certificate, found: dict[str, object], *, role: str = "signer"
) -> str:
    """The container's error reason for a certificate revoked at signing time."""
    return (
        f"The {role}'s certificate ({cert.subject.human_friendly}, serial "
        f"{cert.serial_number}) was revoked on {found['revoked_at']}, before the signing "
        f"time {found['at']} (the signature timestamp's time, or the time of verification "
        "when the signature has none)."
    )


async def _pyhanko_status(
    signed: cms.SignedData,
    data: bytes | BinaryIO,
    attached: bool,
    context: ValidationContext,
    ts_context: ValidationContext,
) -> StandardCMSSignatureStatus:
    if not attached:
        return await generic_cms.async_validate_detached_cms(
            data,
            signed,
            signer_validation_context=context,
            ts_validation_context=ts_context,
            key_usage_settings=KEY_USAGE,
        )

    # pyHanko's attached-signature path skips the signature timestamp: collect it here.
    assert isinstance(data, bytes)  # an attached signature's content is in memory already

    def digest(algorithm: str) -> bytes:
        h = hashes.Hash(get_pyca_cryptography_hash(algorithm))
        h.update(data)
        return h.finalize()

    timing = await generic_cms.collect_timing_info(
        signed["signer_infos"][0], ts_validation_context=ts_context, raw_digest=digest
    )
    return await generic_cms.async_validate_cms_signature(
        signed,
        status_cls=StandardCMSSignatureStatus,
        validation_context=context,
        status_kwargs=timing,
        key_usage_settings=KEY_USAGE,
    )


def _judge(status: Any, signer: str) -> tuple[str, str | None]:
    """The verdict from pyHanko's status: ``bottom_line`` decides; the rest names the reason."""
    if not status.intact:
        return "content-mismatch", (
            "The signature does not match the document: it was made over other content, "
            "or the document changed."
        )
    if not status.valid:
        return "broken", "The signature value does not verify with the signer's public key."
    stamp = status.timestamp_validity
    if stamp is not None and not (stamp.intact and stamp.valid):
        return "broken", "The signature timestamp does not verify (imprint or TSA signature)."
    if stamp is not None and not stamp.trusted:
        return "untrusted", "The signature timestamp's TSA does not chain to a trusted root."
    if not status.trusted:
        problem = getattr(status, "trust_problem_indic", None)
        return "untrusted", (
            f"The signer's certificate ({signer}) does not chain to a configured trust root"
            + (f" ({problem.name})" if problem is not None else "")
            + "."
        )
    if not status.bottom_line:
        return "invalid", "The signature is not valid: " + status.summary() + "."
    return "valid", None
