"""The archive's own small certificates (TSA, seal key, demo CA): one way to issue them, to
write their private keys, and to generate a key folder exactly once per data folder."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import NameOID

__all__ = ["KEY_USAGES", "generate_once", "issue", "issue_pair", "name", "write_private_key"]


def name(organisation: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


KEY_USAGES = (
    "digital_signature",
    "content_commitment",  # nonRepudiation
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def issue(
    subject: x509.Name,
    public_key: CertificateIssuerPublicKeyTypes,
    *,
    issuer: x509.Name,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    days: int,
    ca: bool,
    extended_usage: x509.ObjectIdentifier | None = None,
    usages: frozenset[str] | None = None,
    valid: tuple[dt.datetime, dt.datetime] | None = None,
    path_length: int | None = 0,
    extensions: Sequence[x509.ExtensionType] = (),
) -> x509.Certificate:
    """A CA certificate (keyCertSign, cRLSign, no sub-CAs) or an end-entity one
    (digitalSignature and nonRepudiation), valid from five minutes ago (clock skew) for
    ``days``; a certificate not self-issued names its issuer's key identifier; an extended key
    usage is critical when given. Tests (and other tools) may choose the key ``usages`` (names
    from ``KEY_USAGES``), the ``valid`` period, the CA's ``path_length`` and further
    non-critical ``extensions``."""
    now = dt.datetime.now(dt.UTC)
    chosen = (
        usages
        if usages is not None
        else ({"key_cert_sign", "crl_sign"} if ca else {"digital_signature", "content_commitment"})
    )
    not_before, not_after = valid or (now - dt.timedelta(minutes=5), now + dt.timedelta(days=days))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.KeyUsage(**{usage: usage in chosen for usage in KEY_USAGES}), critical=True
        )
    )
    if not ca or subject != issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    if extended_usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([extended_usage]), critical=True)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def issue_pair(
    organisation: str,
    root_name: str,
    leaf_name: str,
    root_key: CertificateIssuerPrivateKeyTypes,
    key: CertificateIssuerPrivateKeyTypes,
    *,
    root_days: int,
    days: int,
    extended_usage: x509.ObjectIdentifier | None = None,
) -> tuple[x509.Certificate, x509.Certificate]:
    """A self-signed root and the one end-entity certificate it issues for ``key``."""
    issuer = name(organisation, root_name)
    public = root_key.public_key()
    root = issue(issuer, public, issuer=issuer, issuer_key=root_key, days=root_days, ca=True)
    leaf = issue(
        name(organisation, leaf_name),
        key.public_key(),
        issuer=issuer,
        issuer_key=root_key,
        days=days,
        ca=False,
        extended_usage=extended_usage,
    )
    return root, leaf


def write_private_key(path: Path, key: PrivateKeyTypes) -> None:
    """PEM PKCS#8, unencrypted, mode 0600; never over an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def generate_once(folder: Path, marker: str, generate: Callable[[Path], None]) -> None:
    """Fill ``folder`` with ``generate`` unless ``folder / marker`` exists: written under a
    temporary name and renamed into place, so two processes starting together end with one
    key, never a mix."""
    if (folder / marker).exists():
        return
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        generate(staging)
        os.rename(staging, folder)
    except OSError:
        if not (folder / marker).exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
