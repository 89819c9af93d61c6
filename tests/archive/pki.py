"""A local test PKI issued by the archive's own certificate helper (``cairn.archive._certs``):
a CA, RSA and ECDSA signers, an RSA TSA, and signatures made by pyHanko and by
``openssl cms -sign`` (a second, independent tool)."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from dataclasses import dataclass
from pathlib import Path

from asn1crypto import cms, keys  # type: ignore[import-untyped]
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from cairn.archive._certs import issue, name, write_private_key

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class Identity:
    """A certificate with its key, in both libraries' forms, and its PEM files on disk."""

    cert: x509.Certificate
    key: Key
    cert_path: Path
    key_path: Path

    @property
    def asn1_cert(self) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(self.cert.public_bytes(serialization.Encoding.DER))

    @property
    def asn1_key(self) -> keys.PrivateKeyInfo:
        der = self.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return keys.PrivateKeyInfo.load(der)


def make_identity(
    folder: Path,
    stem: str,
    *,
    issuer: Identity | None = None,
    key: Key | None = None,
    ca: bool = False,
    tsa: bool = False,
    digital_signature: bool = True,
    non_repudiation: bool = False,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    extensions: tuple[x509.ExtensionType, ...] = (),
) -> Identity:
    """A certificate (self-signed when no issuer), written as ``stem.pem`` / ``stem.key``;
    issued by the archive's own certificate helper (``cairn.archive._certs``)."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = name("cairn test PKI", f"{stem} (cairn test)")
    usages = {"key_cert_sign", "crl_sign"} if ca else set()
    if digital_signature or tsa:
        usages.add("digital_signature")
    if non_repudiation:
        usages.add("content_commitment")
    cert = issue(
        subject,
        key.public_key(),
        issuer=issuer.cert.subject if issuer else subject,
        issuer_key=issuer.key if issuer else key,
        days=3650,
        ca=ca,
        extended_usage=ExtendedKeyUsageOID.TIME_STAMPING if tsa else None,
        usages=frozenset(usages),
        valid=(
            not_before or NOW - dt.timedelta(days=1),
            not_after or NOW + dt.timedelta(days=3650),
        ),
        path_length=None,
        extensions=extensions,
    )
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_private_key(key_path, key)
    return Identity(cert, key, cert_path, key_path)


@dataclass
class LocalPKI:
    """The whole test PKI; ``roots`` is a trust-roots folder holding only the CA."""

    folder: Path
    roots: Path
    ca: Identity
    rsa_signer: Identity
    ec_signer: Identity
    tsa: Identity
    expired_signer: Identity
    stranger_ca: Identity
    stranger_signer: Identity


def make_pki(folder: Path) -> LocalPKI:
    folder.mkdir(parents=True, exist_ok=True)
    ca = make_identity(folder, "ca", ca=True, key=ec.generate_private_key(ec.SECP256R1()))
    roots = folder / "roots"
    roots.mkdir()
    (roots / "ca.pem").write_bytes(ca.cert_path.read_bytes())
    stranger_ca = make_identity(folder, "stranger-ca", ca=True)
    return LocalPKI(
        folder=folder,
        roots=roots,
        ca=ca,
        # digitalSignature only, as many real signer certificates (pyHanko wants nonRepudiation)
        rsa_signer=make_identity(folder, "rsa-signer", issuer=ca),
        ec_signer=make_identity(
            folder,
            "ec-signer",
            issuer=ca,
            key=ec.generate_private_key(ec.SECP256R1()),
            digital_signature=False,
            non_repudiation=True,
        ),
        tsa=make_identity(folder, "tsa", issuer=ca, tsa=True, digital_signature=False),
        expired_signer=make_identity(
            folder,
            "expired-signer",
            issuer=ca,
            not_before=NOW - dt.timedelta(days=30),
            not_after=NOW - dt.timedelta(days=10),
        ),
        stranger_ca=stranger_ca,
        stranger_signer=make_identity(folder, "stranger-signer", issuer=stranger_ca),
    )


def pyhanko_sign(
    identity: Identity,
    data: bytes,
    *,
    detached: bool = True,
    digest: str = "sha256",
    extra_certs: tuple[Identity, ...] = (),
    prefer_pss: bool = False,
    timestamper: object | None = None,
) -> bytes:
    """A CAdES-BES (or -T with a timestamper) signature by pyHanko, DER."""
    registry = SimpleCertificateStore.from_certs([c.asn1_cert for c in extra_certs])  # type: ignore[no-untyped-call]
    signer = signers.SimpleSigner(
        signing_cert=identity.asn1_cert,
        signing_key=identity.asn1_key,
        cert_registry=registry,
        prefer_pss=prefer_pss,
    )
    content = data if detached else cms.ContentInfo({"content_type": "data", "content": data})
    signed = asyncio.run(
        signer.async_sign_general_data(
            content,
            digest,
            detached=detached,
            use_cades=True,
            timestamper=timestamper,
        )
    )
    der: bytes = signed.dump()
    return der


def openssl_sign(identity: Identity, data_path: Path, *, detached: bool = True) -> bytes:
    """A CMS signature made by the openssl command line (binary DER)."""
    args = [
        "openssl",
        "cms",
        "-sign",
        "-binary",
        "-in",
        str(data_path),
        "-signer",
        str(identity.cert_path),
        "-inkey",
        str(identity.key_path),
        "-outform",
        "DER",
        "-md",
        "sha256",
    ]
    if not detached:
        args.append("-nodetach")
    return subprocess.run(args, check=True, capture_output=True).stdout


def make_crl(
    issuer: Identity,
    revoked: tuple[tuple[Identity, dt.datetime], ...] = (),
    *,
    signing_key: Key | None = None,
) -> bytes:
    """A PEM CRL of ``issuer`` listing each ``(identity, revocation date)``, issued five
    minutes ago and valid for a week (``signing_key``: sign it with another key instead)."""
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(now - dt.timedelta(minutes=5))
        .next_update(now + dt.timedelta(days=7))
    )
    for identity, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(identity.cert.serial_number)
            .revocation_date(when)
            .build()
        )
    crl = builder.sign(signing_key or issuer.key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM)
