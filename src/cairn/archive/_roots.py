"""Trust roots and CRLs at hand, read from the folder ``CAIRN_ARCHIVE_TRUST_ROOTS`` names.

Kept apart from ``verify`` (which imports pyHanko) so that reading the roots costs only
asn1crypto (issue #13, RSS goal: the idle server imports neither).
"""

from __future__ import annotations

from pathlib import Path

from asn1crypto import crl as asn1_crl  # type: ignore[import-untyped]
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509

__all__ = ["load_crls", "load_trust_roots"]


def _files_of(folder: Path | None, pem_type: str) -> list[bytes]:
    """The DER objects of the PEM ``pem_type`` blocks and of the DER files in ``folder``."""
    if folder is None or not folder.is_dir():
        return []
    found: list[bytes] = []
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        raw = path.read_bytes()
        if pem.detect(raw):
            found += [der for kind, _, der in pem.unarmor(raw, multiple=True) if kind == pem_type]
        else:
            found.append(raw)
    return found


def load_trust_roots(folder: Path | None) -> list[asn1_x509.Certificate]:
    """Every PEM or DER certificate in ``folder`` (none when unset or absent)."""
    roots: list[asn1_x509.Certificate] = []
    for der in _files_of(folder, "CERTIFICATE"):
        try:
            cert = asn1_x509.Certificate.load(der, strict=True)
            _ = cert["tbs_certificate"]["subject_public_key_info"].native  # a CRL fails here
        except (ValueError, TypeError, KeyError):
            continue  # not a certificate (a README, a key, a CRL): skipped
        roots.append(cert)
    return roots


def load_crls(folder: Path | None) -> list[asn1_crl.CertificateList]:
    """Every PEM or DER CRL in ``folder`` (the trust roots' folder: the revocation data at
    hand that enhancement adds for LT; none when unset or absent)."""
    found: list[asn1_crl.CertificateList] = []
    for der in _files_of(folder, "X509 CRL"):
        try:
            crl = asn1_crl.CertificateList.load(der, strict=True)
            _ = crl["tbs_cert_list"]["this_update"].native  # a certificate fails here
        except (ValueError, TypeError, KeyError):
            continue  # a certificate, a README, a key: skipped
        found.append(crl)
    return found
