"""A demo PKI for ``cairn admin seed-demo``: a CA whose certificate goes in a trust-roots folder,
and a signer certificate with its key, so a newcomer can sign a file with ``openssl cms`` and
archive it (docs/archive.md, "Try it"). Demo only: the CA's key is thrown away, the signer's
key is written unencrypted, and nothing here is meant to sign anything real."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["DemoPki", "write_demo_pki"]


@dataclass(frozen=True)
class DemoPki:
    trust_roots: Path  # a folder holding the demo CA's certificate: CAIRN_ARCHIVE_TRUST_ROOTS
    signer_cert: Path  # PEM
    signer_key: Path  # PEM, PKCS#8, unencrypted (mode 0600)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cairn demo (not for real use)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=not ca,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def write_demo_pki(folder: Path) -> DemoPki:
    """Write the demo CA and signer under ``folder`` (kept when already there)."""
    pki = DemoPki(folder / "trust-roots", folder / "signer.pem", folder / "signer.key")
    if pki.signer_key.exists():
        return pki
    pki.trust_roots.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())  # P-256: instant, unlike RSA under load
    key = ec.generate_private_key(ec.SECP256R1())

    def certificate(
        subject: str, public: ec.EllipticCurvePublicKey, *, ca: bool
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(_name("cairn demo CA"))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365 * (10 if ca else 3)))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), True)
            .add_extension(_usage(ca=ca), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        )
        if not ca:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
        return builder.sign(ca_key, hashes.SHA256())

    pem = serialization.Encoding.PEM
    ca_cert = certificate("cairn demo CA", ca_key.public_key(), ca=True)
    (pki.trust_roots / "demo-ca.pem").write_bytes(ca_cert.public_bytes(pem))
    signer = certificate("Demo Researcher", key.public_key(), ca=False)
    pki.signer_cert.write_bytes(signer.public_bytes(pem))
    fd = os.open(pki.signer_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    return pki
