"""LT revocation data: CRLs at hand (files in the trust roots' folder; the test CA issues
one, no network) go into SignedData.crls when enhancing, only for the signature's issuers;
the ATSv3 covers them and ``openssl cms -verify -crl_check`` then finds the CRL in the
signature itself (without it, OpenSSL cannot check revocation and refuses)."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from cairn.archive import cades
from cairn.archive._enhance import enhance_signature, verify_archive_timestamps
from cairn.archive.tsa import Tsa, open_tsa, timestamp_token
from cairn.archive.verify import load_crls, load_trust_roots, parse_signature
from tests.archive.pki import LocalPKI, make_crl, pyhanko_sign

DOCUMENT = b"Revocation data travels with the signature.\n"


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Tsa:
    return open_tsa(tmp_path_factory.mktemp("tsa-data"))


def _roots_with_crls(pki: LocalPKI, tmp_path: Path) -> Path:
    roots = tmp_path / "roots"
    shutil.copytree(pki.roots, roots)
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    (roots / "ca.crl").write_bytes(make_crl(pki.ca, ((pki.expired_signer, yesterday),)))
    (roots / "stranger.crl").write_bytes(make_crl(pki.stranger_ca))  # not the signer's issuer
    return roots


def test_crls_at_hand_go_into_the_signature(pki: LocalPKI, tsa: Tsa, tmp_path: Path) -> None:
    roots = _roots_with_crls(pki, tmp_path)
    crls = load_crls(roots)
    assert len(crls) == 2 and len(load_trust_roots(roots)) == 1  # each file read as what it is
    raw = pyhanko_sign(pki.rsa_signer, DOCUMENT)
    enhanced = enhance_signature(
        raw,
        document=DOCUMENT,
        content_sha256=hashlib.sha256(DOCUMENT).digest(),
        make_token=lambda digest: timestamp_token(digest, tsa=tsa),
        tsa_certs=[tsa.cert, tsa.root],
        trust_roots=load_trust_roots(roots),
        crls=crls,
    )
    assert "crls" in enhanced.added
    signed = parse_signature(enhanced.raw)
    included = [c.chosen for c in cades._items(signed["crls"])]
    assert [c["tbs_cert_list"]["issuer"].dump() for c in included] == [
        pki.ca.asn1_cert.subject.dump()
    ]
    index = cades.hash_index(signed)
    assert len(index["crls_hash_index"]) == 1  # the new ATSv3 covers the CRL
    digest = hashlib.sha256(DOCUMENT).digest()
    assert verify_archive_timestamps(signed, digest, [tsa.root]) == []

    (tmp_path / "document.txt").write_bytes(DOCUMENT)
    (tmp_path / "enhanced.sig").write_bytes(enhanced.raw)
    (tmp_path / "plain.sig").write_bytes(raw)

    def openssl(signature: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", signature,
             "-content", "document.txt", "-CAfile", str(pki.ca.cert_path), "-purpose", "any",
             "-crl_check", "-out", "/dev/null"],
            cwd=tmp_path, capture_output=True, text=True,
        )  # fmt: skip

    checked = openssl("enhanced.sig")
    assert checked.returncode == 0, checked.stderr
    without = openssl("plain.sig")  # no CRL in the signature: OpenSSL cannot check revocation
    assert without.returncode != 0 and "crl" in without.stderr.lower(), without.stderr


def test_enhancing_again_adds_no_crl_twice(pki: LocalPKI, tsa: Tsa, tmp_path: Path) -> None:
    crls = load_crls(_roots_with_crls(pki, tmp_path))
    signed = parse_signature(pyhanko_sign(pki.rsa_signer, DOCUMENT))
    assert cades.add_crls(signed, crls) == 1
    assert cades.add_crls(signed, crls) == 0
