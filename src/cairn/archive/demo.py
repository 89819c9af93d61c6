"""A demo PKI for ``cairn admin seed-demo``: a CA whose certificate goes in a trust-roots folder,
and a signer certificate with its key, so a newcomer can sign a file with ``openssl cms`` and
archive it (docs/archive.md, "Try it"). Demo only: the CA's key is thrown away, the signer's
key is written unencrypted, and nothing here is meant to sign anything real."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cairn.archive._certs import issue_pair, write_private_key

__all__ = ["DemoPki", "write_demo_pki"]


@dataclass(frozen=True)
class DemoPki:
    trust_roots: Path  # a folder holding the demo CA's certificate: CAIRN_ARCHIVE_TRUST_ROOTS
    signer_cert: Path  # PEM
    signer_key: Path  # PEM, PKCS#8, unencrypted (mode 0600)


def write_demo_pki(folder: Path) -> DemoPki:
    """Write the demo CA and signer under ``folder`` (kept when already there)."""
    pki = DemoPki(folder / "trust-roots", folder / "signer.pem", folder / "signer.key")
    if pki.signer_key.exists():
        return pki
    pki.trust_roots.mkdir(parents=True, exist_ok=True)
    ca_cert, signer = issue_pair(
        "cairn demo (not for real use)",
        "cairn demo CA",
        "Demo Researcher",
        ec.generate_private_key(ec.SECP256R1()),  # P-256: instant, unlike RSA under load
        key := ec.generate_private_key(ec.SECP256R1()),
        root_days=3650,
        days=365 * 3,
    )
    pem = serialization.Encoding.PEM
    (pki.trust_roots / "demo-ca.pem").write_bytes(ca_cert.public_bytes(pem))
    pki.signer_cert.write_bytes(signer.public_bytes(pem))
    write_private_key(pki.signer_key, key)
    return pki
