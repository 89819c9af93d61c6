"""CRLs from distribution points for LT: fetching the CRL a certificate's
cRLDistributionPoints extension names, checking it, and saying why when it cannot be used.

Only ``http://`` points are asked (RFC 5280 §4.2.1.13: CRLs are signed, so they need no TLS,
and an https point could need the very revocation data it serves). A download is bounded in
bytes (``MAX_BYTES``) and in total time (``TIMEOUT``), so a slow or endless server cannot
hold the worker. A CRL counts only when it names the certificate's issuer and its signature
verifies with the key of a certificate that signed the certificate (``_revocation``): a CRL
signed by another key is ignored, never added to the signature. Nothing here raises for a
bad server or a bad answer: each outcome carries its reason.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx
from asn1crypto import crl as asn1_crl  # type: ignore[import-untyped]
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509

from cairn.archive._revocation import load_certificate, signed_by, valid_issuers

__all__ = ["MAX_BYTES", "TIMEOUT", "CrlFetcher", "FetchedCrl", "crl_urls", "fetch_crls"]

log = logging.getLogger(__name__)
MAX_BYTES = 8 * 1024 * 1024  # a large CA's full CRL is a few MiB
TIMEOUT = 10.0  # seconds for the whole download, not per read


@dataclass(frozen=True)
class FetchedCrl:
    """What one distribution point gave: a checked CRL, or the reason there is none."""

    url: str
    crl: asn1_crl.CertificateList | None
    problem: str | None = None


# The certificate and the candidates for its issuer in, one outcome per distribution point out.
CrlFetcher = Callable[[asn1_x509.Certificate, Sequence[asn1_x509.Certificate]], list[FetchedCrl]]


class _Refused(Exception):
    """The download was cut off; the message says why."""


def crl_urls(cert: x509.Certificate) -> list[str]:
    """The ``http://`` CRL distribution points the certificate names, in order."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [
        str(name.value)
        for point in points
        for name in point.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
        and str(name.value).lower().startswith("http://")
    ]


def _download(url: str, *, max_bytes: int, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    chunks, size = [], 0
    with httpx.stream("GET", url, timeout=timeout, follow_redirects=False) as answer:
        answer.raise_for_status()
        declared = answer.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise _Refused(f"it is {declared} bytes, more than the limit of {max_bytes}")
        for chunk in answer.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise _Refused(f"it is more than the limit of {max_bytes} bytes")
            if time.monotonic() > deadline:
                raise _Refused(f"the download took more than {timeout:g} s")
            chunks.append(chunk)
    return b"".join(chunks)


def _parse(body: bytes) -> tuple[asn1_crl.CertificateList, x509.CertificateRevocationList]:
    """The CRL in DER or PEM, in both libraries' forms; ValueError when it is none."""
    der = pem.unarmor(body)[2] if pem.detect(body) else body
    try:
        parsed = asn1_crl.CertificateList.load(der, strict=True)
        _ = parsed["tbs_cert_list"]["this_update"].native
        return parsed, x509.load_der_x509_crl(der)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError("the answer is not a CRL (neither DER nor PEM)") from exc


def _fetch_one(
    url: str,
    target: x509.Certificate,
    issuers: Sequence[x509.Certificate],
    *,
    max_bytes: int,
    timeout: float,
) -> FetchedCrl:
    try:
        body = _download(url, max_bytes=max_bytes, timeout=timeout)
    except _Refused as exc:
        return FetchedCrl(url, None, f"CRL from {url} not used: {exc}.")
    except httpx.HTTPStatusError as exc:
        status = exc.response.status_code
        return FetchedCrl(url, None, f"CRL from {url} not used: the server answered {status}.")
    except httpx.HTTPError as exc:
        return FetchedCrl(url, None, f"CRL from {url} not used: unreachable ({exc}).")
    try:
        asn1, crl = _parse(body)
    except ValueError as exc:
        return FetchedCrl(url, None, f"CRL from {url} not used: {exc}.")
    if crl.issuer != target.issuer or not signed_by(crl, issuers):
        return FetchedCrl(
            url, None, f"CRL from {url} not used: not signed by the certificate's issuer."
        )
    return FetchedCrl(url, asn1)


def fetch_crls(
    cert: asn1_x509.Certificate,
    candidates: Sequence[asn1_x509.Certificate],
    *,
    max_bytes: int = MAX_BYTES,
    timeout: float = TIMEOUT,
) -> list[FetchedCrl]:
    """The CRL of each ``http://`` distribution point ``cert`` names, checked against its
    issuer (found among ``candidates`` by signature); one outcome per point, none when it
    names none. Problems are logged and returned, never raised."""
    target = load_certificate(cert)
    issuers = valid_issuers(target, [load_certificate(c) for c in candidates])
    found = []
    for url in crl_urls(target):
        outcome = _fetch_one(url, target, issuers, max_bytes=max_bytes, timeout=timeout)
        if outcome.problem:
            log.warning("%s", outcome.problem)
        found.append(outcome)
    return found
