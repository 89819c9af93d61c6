"""Enhancing one signature to CAdES-A: T (signature timestamp), LT (certificates at hand),
then a new archive-time-stamp-v3 over everything, re-verified before it is accepted.

Nothing here touches the database: the worker (``_worker.py``) stores the result only when it
is complete and verified, so a half-written signature is never served.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import cms  # type: ignore[import-untyped]
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from pyhanko.sign.validation import generic_cms
from pyhanko_certvalidator import ValidationContext

from cairn.archive import cades
from cairn.archive._crldp import CrlFetcher
from cairn.archive._ocsp import add_ocsp_responses
from cairn.archive.verify import (
    parse_signature,
    revocation_path,
    revoked_at_signing,
    signer_certificate,
    verify_signature,
)

# Asks the OCSP responder a certificate names (``_ocsp.fetch_ocsp``): the certificate and the
# candidates for its issuer in, a checked DER OCSPResponse or None out.
OcspFetcher = Callable[[asn1_x509.Certificate, list[asn1_x509.Certificate]], bytes | None]

__all__ = ["EnhanceFailed", "Enhanced", "enhance_signature", "verify_archive_timestamps"]


class EnhanceFailed(Exception):
    """The signature cannot be enhanced; the message is the container's error reason."""


@dataclass
class Enhanced:
    raw: bytes
    level: str
    expires: datetime
    added: list[str]
    notes: list[str] = field(default_factory=list)  # e.g. why a fetched CRL was not used


def _not_after(cert: asn1_x509.Certificate) -> datetime:
    value: datetime = cert["tbs_certificate"]["validity"]["not_after"].native
    return value


def _chain_certs(
    signed: cms.SignedData, roots: list[asn1_x509.Certificate]
) -> list[asn1_x509.Certificate]:
    """The trust roots that issued a certificate of the signature (found by key identifier)."""
    present = signed["certificates"]
    certs = [c.chosen for c in cades._items(present) if c.name == "certificate"]
    wanted = {c.authority_key_identifier for c in certs if c.authority_key_identifier}
    return [r for r in roots if r.key_identifier in wanted]


def _add_ocsp(
    signed: cms.SignedData, trust_roots: list[asn1_x509.Certificate], fetch: OcspFetcher
) -> bool:
    """The signer certificate's OCSP response from its responder, added to the signature."""
    certs = [c.chosen for c in cades._items(signed["certificates"]) if c.name == "certificate"]
    signer = signer_certificate(signed)
    if signer is None:
        return False
    response = fetch(signer, [*trust_roots, *certs])
    return response is not None and add_ocsp_responses(signed, [response]) > 0


def _fetched_crls(
    signed: cms.SignedData, trust_roots: list[asn1_x509.Certificate], fetch: CrlFetcher
) -> tuple[list[asn1_crl.CertificateList], list[str]]:
    """The checked CRLs the distribution points of the signer's and the signature
    timestamp's TSA's paths give, and why the others were not used."""
    certs = [c.chosen for c in cades._items(signed["certificates"]) if c.name == "certificate"]
    path = revocation_path(signed, trust_roots)
    crls, notes = [], []
    for cert in path:
        for outcome in fetch(cert, [*trust_roots, *certs, *path]):
            if outcome.crl is not None:
                crls.append(outcome.crl)
            elif outcome.problem:
                notes.append(outcome.problem)
    return crls, notes


def _fixed(digest: bytes) -> Callable[[str], bytes]:
    return lambda _algorithm: digest


def verify_archive_timestamps(
    signed: cms.SignedData,
    content_sha256: bytes,
    roots: list[asn1_x509.Certificate],
    *,
    document: bytes | None = None,
    check_v2: bool = False,
) -> list[str]:
    """Problems with the archive timestamps present (empty when all hold): each v3's imprint
    and hash index recomputed, with ``check_v2`` each v2's imprint too (it hashes the whole
    ``document`` of a detached signature), and each token's signature checked by pyHanko."""
    problems = [
        f"archive timestamp {i}: {c.problem}"
        for i, c in enumerate(cades.check_archive_timestamps(signed, content_sha256))
        if c.problem
    ]
    kinds = {cades.ATS_V3}
    if check_v2:
        kinds.add(cades.ATS_V2)
        problems += [
            f"archive timestamp v2 {i}: {c.problem}"
            for i, c in enumerate(cades.check_archive_timestamps_v2(signed, document))
            if c.problem
        ]
    context = ValidationContext(
        trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail"
    )
    for index, attr in enumerate(
        a for a in cades._unsigned(signed["signer_infos"][0]) if a["type"].dotted in kinds
    ):
        token = cms.ContentInfo.load(attr["values"][0].dump())
        info = token["content"]["encap_content_info"]["content"].parsed
        claimed: bytes = info["message_imprint"]["hashed_message"].native
        # The imprint itself was recomputed above; here only the token's signature counts.
        status = asyncio.run(
            generic_cms.validate_tst_signed_data(token["content"], context, _fixed(claimed))
        )
        if not (status["intact"] and status["valid"]) or status.get("trust_problem_indic"):
            problems.append(f"archive timestamp {index}: its token does not verify")
    return problems


def enhance_signature(
    raw: bytes,
    *,
    document: bytes | None,
    content_sha256: bytes,
    make_token: cades.TokenMaker,
    tsa_certs: list[asn1_x509.Certificate],
    trust_roots: list[asn1_x509.Certificate],
    crls: list[asn1_crl.CertificateList] | None = None,
    fetch_ocsp: OcspFetcher | None = None,
    fetch_crls: CrlFetcher | None = None,
) -> Enhanced:
    """``raw`` enhanced to CAdES-A, keeping whatever it already had. Refuses (EnhanceFailed)
    a signature that does not verify, whose archive timestamps do not hold, or whose signer
    was revoked at signing time by a CRL at hand (``crls`` or the signature's own) or an OCSP
    response (``fetch_ocsp`` asks the responder the signer's certificate names; the answer
    goes into the signature for LT). Revocation covers every certificate of the signer's
    path and of the signature timestamp's TSA path; ``fetch_crls`` asks the CRL
    distribution points they name, and what it finds is used and kept for LT too."""
    roots = [*trust_roots, *tsa_certs[-1:]]
    signed = parse_signature(raw)
    attached = signed["encap_content_info"]["content"].native is not None
    # An archive-time-stamp-v2 hashes the whole document: checked when it is at hand (kept by
    # the archive, or attached). Only before enhancing: the new ATSv3 then covers the v2
    # token as it was verified, and the certificates added for LT change what v2 hashed.
    before = verify_archive_timestamps(
        signed,
        content_sha256,
        roots,
        document=None if attached else document,
        check_v2=attached or document is not None,
    )
    if before:
        raise EnhanceFailed("Refusing to enhance: " + "; ".join(before) + ".")
    added: list[str] = []
    if cades.add_signature_timestamp(signed, make_token):
        added.append("signature-time-stamp")
    if cades.add_certificates(signed, [*tsa_certs, *_chain_certs(signed, trust_roots)]):
        added.append("certificates")
    crls, notes = list(crls or []), list[str]()
    if fetch_crls is not None:
        fetched, notes = _fetched_crls(signed, trust_roots, fetch_crls)
        crls += fetched
    if cades.add_crls(signed, crls):  # revocation data at hand (the trust roots', fetched)
        added.append("crls")
    if fetch_ocsp is not None and _add_ocsp(signed, trust_roots, fetch_ocsp):
        added.append("ocsp")
    # Also when the document is not at hand (only its hash is kept): revocation needs none.
    # The signing time is the signature timestamp's (the one just added for a BES: now).
    revoked = revoked_at_signing(signed, trust_roots=trust_roots, crls=crls)
    if revoked is not None:
        raise EnhanceFailed(f"Refusing to enhance: {revoked}")
    cades.add_archive_timestamp_v3(signed, content_sha256, make_token)
    added.append("archive-time-stamp-v3")
    info = cms.ContentInfo({"content_type": "signed_data", "content": signed})
    enhanced: bytes = info.dump()
    # Re-verify what will be stored: the signature with its new timestamp (when the document
    # is at hand: attached, or kept with UseArchiveCa; else it was verified on upload), then
    # every archive timestamp.
    if document is not None or attached:
        check = verify_signature(
            enhanced, document, trust_roots=trust_roots, tsa_roots=roots, crls=crls
        )
        if not check.ok:
            raise EnhanceFailed(f"The enhanced signature does not verify: {check.reason}")
    after = verify_archive_timestamps(parse_signature(enhanced), content_sha256, roots)
    if after:
        raise EnhanceFailed("The new archive timestamp does not verify: " + "; ".join(after))
    certs = [c.chosen for c in cades._items(signed["certificates"]) if c.name == "certificate"]
    expires = min(_not_after(c) for c in certs)
    return Enhanced(enhanced, cades.detect_level(signed), expires, added, notes)
