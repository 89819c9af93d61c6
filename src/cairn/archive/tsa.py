"""cairn's own RFC 3161 timestamp authority, and the client side (own TSA or a URL).

On first use a root certificate and a TSA certificate (RSA, critical EKU timeStamping) are
generated into ``<data_dir>/archive-tsa/``; the folder is written under a temporary name and
renamed into place, so two processes starting together end with one key, never a mix.
Responses follow RFC 3161: the TSTInfo is signed with signing-certificate-v2 (SHA-256),
each token has a random 128-bit serial number, and a request with an unknown hash algorithm
or a wrong-sized imprint is answered with a rejection, not an error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import httpx
from asn1crypto import algos, cms, core, tsp  # type: ignore[import-untyped]
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko.sign.general import as_signing_certificate_v2

from cairn.archive._certs import generate_once, issue_pair, write_private_key

__all__ = ["POLICY", "TimeStampResponse", "Tsa", "open_tsa", "request_timestamp", "timestamp_token"]

# A UUID-based OID (ITU-T X.667, arc 2.25): cairn's own TSA policy, no registration needed.
POLICY = "2.25.203617294061548116346377105416230905161"
_DIGESTS = {"sha256": 32, "sha384": 48, "sha512": 64, "sha3_256": 32, "sha3_512": 64}
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


@dataclass(frozen=True)
class Tsa:
    """A loaded TSA: its key, certificate and the root that issued it."""

    key: rsa.RSAPrivateKey
    cert: asn1_x509.Certificate
    root: asn1_x509.Certificate
    folder: Path

    @property
    def root_pem(self) -> Path:
        return self.folder / "root.pem"

    @property
    def cert_pem(self) -> Path:
        return self.folder / "tsa.pem"

    def respond(self, request_der: bytes, *, now: dt.datetime | None = None) -> bytes:
        """The DER TimeStampResp answering a DER TimeStampReq."""
        try:
            request = tsp.TimeStampReq.load(request_der, strict=True)
            imprint = request["message_imprint"]
            algorithm = imprint["hash_algorithm"]["algorithm"].native
            digest = imprint["hashed_message"].native
            nonce = request["nonce"].native
            want_certs = bool(request["cert_req"].native)
        except (ValueError, TypeError, KeyError):
            return _rejection("bad_data_format", "Not a DER TimeStampReq.")
        if algorithm not in _DIGESTS:
            return _rejection("bad_alg", f"Unsupported hash algorithm {algorithm}.")
        if len(digest) != _DIGESTS[algorithm]:
            return _rejection("bad_data_format", "The imprint's length does not fit its algorithm.")
        token = self.token(imprint, nonce=nonce, with_certs=want_certs, now=now)
        status = tsp.PKIStatusInfo({"status": "granted"})
        dumped: bytes = tsp.TimeStampResp({"status": status, "time_stamp_token": token}).dump()
        return dumped

    def token(
        self,
        imprint: tsp.MessageImprint,
        *,
        nonce: int | None = None,
        with_certs: bool = True,
        now: dt.datetime | None = None,
    ) -> cms.ContentInfo:
        """A timestamp token (ContentInfo of SignedData over TSTInfo) for ``imprint``."""
        moment = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        info = {
            "version": "v1",
            "policy": POLICY,
            "message_imprint": imprint,
            "serial_number": secrets.randbits(127),
            "gen_time": moment,
            "tsa": asn1_x509.GeneralName(name="directory_name", value=self.cert.subject),
        }
        if nonce is not None:
            info["nonce"] = nonce
        tst_info = tsp.TSTInfo(info).dump()
        signed_attrs = cms.CMSAttributes(
            [
                _attr("content_type", "tst_info"),
                _attr("signing_time", cms.Time({"utc_time": core.UTCTime(moment)})),
                _attr("message_digest", hashlib.sha256(tst_info).digest()),
                _attr("signing_certificate_v2", as_signing_certificate_v2(self.cert, "sha256")),
            ]
        )
        signature = self.key.sign(signed_attrs.dump(), padding.PKCS1v15(), hashes.SHA256())
        sha256 = algos.DigestAlgorithm({"algorithm": "sha256"})
        signer = cms.SignerInfo(
            {
                "version": "v1",
                "sid": cms.SignerIdentifier(
                    {
                        "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                            {"issuer": self.cert.issuer, "serial_number": self.cert.serial_number}
                        )
                    }
                ),
                "digest_algorithm": sha256,
                "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa"}),
                "signed_attrs": signed_attrs,
                "signature": signature,
            }
        )
        signed = {
            "version": "v3",
            "digest_algorithms": [sha256],
            "encap_content_info": {
                "content_type": "tst_info",
                "content": cms.ParsableOctetString(tst_info),
            },
            "signer_infos": [signer],
        }
        if with_certs:
            signed["certificates"] = [self.cert, self.root]
        return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed)})


def _attr(kind: str, value: object) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": kind, "values": (value,)})


def _rejection(fail: str, text: str) -> bytes:
    status = tsp.PKIStatusInfo(
        {"status": "rejection", "status_string": [text], "fail_info": tsp.PKIFailureInfo({fail})}
    )
    dumped: bytes = TimeStampResponse({"status": status}).dump()
    return dumped


class TimeStampResponse(core.Sequence):  # type: ignore[misc]
    """RFC 3161 TimeStampResp. asn1crypto's ``tsp.TimeStampResp`` marks the token required,
    so it can neither write nor read a rejection; here it is optional, as in the RFC."""

    _fields = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def _generate(folder: Path) -> None:
    # RSA-2048: made inside the first request that needs it, which must stay within client
    # timeouts on slow machines (3072-bit generation took over 10 s under load). The TSA
    # certificate expiry feeds signatureUpdateDate, so re-stamps come due before it ends.
    root, cert = issue_pair(
        "cairn",
        f"cairn archive root {secrets.token_hex(4)}",
        "cairn archive TSA",
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        key := rsa.generate_private_key(public_exponent=65537, key_size=2048),
        root_days=365 * 20,
        days=365 * 10,
        extended_usage=ExtendedKeyUsageOID.TIME_STAMPING,
    )
    pem = serialization.Encoding.PEM
    (folder / "root.pem").write_bytes(root.public_bytes(pem))
    (folder / "tsa.pem").write_bytes(cert.public_bytes(pem))
    write_private_key(folder / "tsa.key", key)
    # The root's key is not kept: nothing else is ever issued under it.


def _load(folder: Path) -> Tsa:
    key = serialization.load_pem_private_key((folder / "tsa.key").read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)

    def cert(name: str) -> asn1_x509.Certificate:
        loaded = x509.load_pem_x509_certificate((folder / name).read_bytes())
        return asn1_x509.Certificate.load(loaded.public_bytes(serialization.Encoding.DER))

    return Tsa(key=key, cert=cert("tsa.pem"), root=cert("root.pem"), folder=folder)


@cache
def open_tsa(data_dir: Path) -> Tsa:
    """cairn's TSA for this data folder, generated on first use."""
    folder = data_dir / "archive-tsa"
    generate_once(folder, "tsa.key", _generate)
    return _load(folder)


def timestamp_token(
    data_digest: bytes, *, tsa: Tsa | None, tsa_url: str = "", algorithm: str = "sha256"
) -> cms.ContentInfo:
    """A timestamp token over ``data_digest``: from cairn's TSA, or the configured URL."""
    imprint = tsp.MessageImprint(
        {"hash_algorithm": {"algorithm": algorithm}, "hashed_message": data_digest}
    )
    if not tsa_url:
        assert tsa is not None
        return tsa.token(imprint)
    return request_timestamp(tsa_url, imprint)


def request_timestamp(url: str, imprint: tsp.MessageImprint) -> cms.ContentInfo:
    """Ask an RFC 3161 TSA over HTTP; a rejection or a wrong nonce raises ``ValueError``."""
    nonce = secrets.randbits(63)
    request = tsp.TimeStampReq(
        {"version": "v1", "message_imprint": imprint, "nonce": nonce, "cert_req": True}
    )
    answer = httpx.post(
        url,
        content=request.dump(),
        headers={"Content-Type": "application/timestamp-query"},
        timeout=30,
    )
    answer.raise_for_status()
    response = TimeStampResponse.load(answer.content)
    if response["status"]["status"].native not in ("granted", "granted_with_mods"):
        raise ValueError(f"The TSA refused: {response['status'].native}")
    token: cms.ContentInfo = response["time_stamp_token"]
    info = token["content"]["encap_content_info"]["content"].parsed
    if info["nonce"].native != nonce or info["message_imprint"].dump() != imprint.dump():
        raise ValueError("The TSA's answer does not match the request (nonce or imprint).")
    return token
