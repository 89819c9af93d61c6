"""Trust roots and CRLs at hand, read from the folder ``CAIRN_ARCHIVE_TRUST_ROOTS`` names.

Kept apart from ``verify`` (which imports pyHanko) so that reading the roots costs only
asn1crypto (issue #13, RSS goal: the idle server imports neither).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from asn1crypto import crl as asn1_crl  # type: ignore[import-untyped]
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509

__all__ = ["load_crls", "load_trust_roots"]

T = TypeVar("T")


# The folder is read for every upload and every enhancement, and parsing it each time cost
# more than reading it (issue #17, the upload -> archived ratio): the parsed objects are kept
# per folder and kind, and reused while the files' bytes are the same.
_cache: dict[tuple[Path, str], tuple[bytes, list[object]]] = {}
_lock = threading.Lock()


def _cached(folder: Path | None, kind: str, load: Callable[[list[bytes]], list[T]]) -> list[T]:
    """``load`` over the DER objects of the folder's ``kind`` PEM blocks and DER files, parsed
    once per content of the folder; a fresh list each call (callers may extend it)."""
    if folder is None or not folder.is_dir():
        return []
    files = _files_of(folder, kind)
    version = hashlib.sha256(b"".join(hashlib.sha256(der).digest() for der in files)).digest()
    with _lock:
        hit = _cache.get((folder, kind))
    if hit is not None and hit[0] == version:
        return list(hit[1])  # type: ignore[arg-type]
    items = load(files)
    for item in items:
        # asn1crypto parses lazily, filling lists in place: parsed to the end here, the
        # shared objects are only read by the request and worker threads using them.
        with contextlib.suppress(ValueError, TypeError, KeyError):
            _ = item.native  # type: ignore[attr-defined]
    with _lock:
        _cache[(folder, kind)] = (version, list(items))
    return items


def _files_of(folder: Path, pem_type: str) -> list[bytes]:
    """The DER objects of the PEM ``pem_type`` blocks and of the DER files in ``folder``."""
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
    return _cached(folder, "CERTIFICATE", _certificates)


def _certificates(ders: list[bytes]) -> list[asn1_x509.Certificate]:
    roots: list[asn1_x509.Certificate] = []
    for der in ders:
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
    return _cached(folder, "X509 CRL", _crls)


def _crls(ders: list[bytes]) -> list[asn1_crl.CertificateList]:
    found: list[asn1_crl.CertificateList] = []
    for der in ders:
        try:
            crl = asn1_crl.CertificateList.load(der, strict=True)
            _ = crl["tbs_cert_list"]["this_update"].native  # a certificate fails here
        except (ValueError, TypeError, KeyError):
            continue  # a certificate, a README, a key: skipped
        found.append(crl)
    return found
