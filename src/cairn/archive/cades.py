"""CAdES structure: the level a signature is at, read from its unsigned attributes.

ETSI EN 319 122-1 levels: BES/EPES (signed attributes only), T (a signature timestamp),
LT / X-L (certificate and revocation values, or them in SignedData), A / LTA (archive
timestamps v2 or v3). asn1crypto does not know the archive-timestamp OIDs; they are compared
as dotted strings.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import algos, cms, core, parser  # type: ignore[import-untyped]
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509

__all__ = [
    "ATS_HASH_INDEX_V3",
    "ATS_V2",
    "ATS_V3",
    "AtsCheck",
    "AtsHashIndexV3",
    "add_archive_timestamp_v3",
    "add_certificates",
    "add_crls",
    "add_signature_timestamp",
    "ats_v2_imprints",
    "ats_v3_imprint",
    "check_archive_timestamps",
    "check_archive_timestamps_v2",
    "detect_level",
    "hash_index",
    "load_hash_index",
    "unsigned_attr_types",
]

SIGNATURE_TIME_STAMP = "1.2.840.113549.1.9.16.2.14"
CERTIFICATE_VALUES = "1.2.840.113549.1.9.16.2.23"
REVOCATION_VALUES = "1.2.840.113549.1.9.16.2.24"
ATS_V2 = "1.2.840.113549.1.9.16.2.48"
ATS_V3 = "0.4.0.1733.2.4"
ATS_HASH_INDEX_V3 = "0.4.0.19122.1.5"


def _items(value: core.Asn1Value) -> list[core.Asn1Value]:
    """The elements of an optional SET OF, without parsing them (``.native`` would parse
    every nested value and fails on attribute types asn1crypto does not know)."""
    return [] if isinstance(value, core.Void) else list(value)


def unsigned_attr_types(signer_info: cms.SignerInfo) -> list[str]:
    """The dotted OIDs of the signer's unsigned attributes, in order."""
    return [attr["type"].dotted for attr in _items(signer_info["unsigned_attrs"])]


def detect_level(signed_data: cms.SignedData) -> str:
    """``BES``, ``T``, ``LT`` or ``A``: the highest CAdES level present on the first signer."""
    signer_info = signed_data["signer_infos"][0]
    types = set(unsigned_attr_types(signer_info))
    if types & {ATS_V2, ATS_V3}:
        return "A"
    has_values = bool(types & {CERTIFICATE_VALUES, REVOCATION_VALUES})
    has_crls = bool(_items(signed_data["crls"]))
    if SIGNATURE_TIME_STAMP in types and (has_values or has_crls):
        return "LT"
    if SIGNATURE_TIME_STAMP in types:
        return "T"
    return "BES"


# --- enhancement: T, LT and archive-time-stamp-v3 (ETSI EN 319 122-1) -----------------------

TokenMaker = Callable[[bytes], cms.ContentInfo]  # sha256 digest -> timestamp token


class _Hashes(core.SequenceOf):  # type: ignore[misc]
    _child_spec = core.OctetString


class AtsHashIndexV3(core.Sequence):  # type: ignore[misc]
    """ats-hash-index-v3 (ETSI EN 319 122-1 §5.5.2); asn1crypto does not define it."""

    _fields = [
        ("hash_ind_algorithm", algos.DigestAlgorithm, {"default": {"algorithm": "sha256"}}),
        ("certificates_hash_index", _Hashes),
        ("crls_hash_index", _Hashes),
        ("unsigned_attr_values_hash_index", _Hashes),
    ]


def load_hash_index(der: bytes) -> AtsHashIndexV3:
    """Parse an ats-hash-index-v3. Its first field is an AlgorithmIdentifier with a DEFAULT,
    and both it and the certificates list are SEQUENCEs, so asn1crypto alone would take the
    certificates list for the algorithm when (as DER requires for SHA-256) it is omitted."""
    contents = core.Sequence.load(der).contents
    children, pointer = [], 0
    while pointer < len(contents):
        size = parser.peek(contents[pointer:])
        children.append(contents[pointer : pointer + size])
        pointer += size
    if len(children) == 3:
        lists = [_Hashes.load(child) for child in children]
        names = ("certificates_hash_index", "crls_hash_index", "unsigned_attr_values_hash_index")
        return AtsHashIndexV3(dict(zip(names, lists, strict=True)))
    if len(children) != 4:
        raise ValueError("ats-hash-index-v3 has 3 or 4 fields")
    algorithm = algos.DigestAlgorithm.load(children[0])
    lists = [_Hashes.load(child) for child in children[1:]]
    return AtsHashIndexV3(
        {
            "hash_ind_algorithm": algorithm,
            "certificates_hash_index": lists[0],
            "crls_hash_index": lists[1],
            "unsigned_attr_values_hash_index": lists[2],
        }
    )


def _register_oids() -> None:
    """Teach asn1crypto the archive-timestamp attributes, so their values parse as what they
    are (tokens, hash indexes) instead of failing deep inside as unknown elements. The
    reverse map is extended, never reset: asn1crypto builds it once per class, so a reset
    after the first attribute was made (this module is imported lazily, issue #13) would
    leave it None and break every later attribute."""
    names = {
        ATS_V2: ("archive_time_stamp_v2", cms.SetOfContentInfo),
        ATS_V3: ("archive_time_stamp_v3", cms.SetOfContentInfo),
        ATS_HASH_INDEX_V3: ("ats_hash_index_v3", cms.SetOfAny),  # see load_hash_index
    }
    for oid, (name, spec) in names.items():
        cms.CMSAttributeType._map.setdefault(oid, name)
        if cms.CMSAttributeType._reverse_map is not None:
            cms.CMSAttributeType._reverse_map.setdefault(name, oid)
        cms.CMSAttribute._oid_specs.setdefault(name, spec)


_register_oids()


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _unsigned(signer_info: cms.SignerInfo) -> list[cms.CMSAttribute]:
    attrs = signer_info["unsigned_attrs"]
    return _items(attrs)


def _set_unsigned(signer_info: cms.SignerInfo, attrs: list[cms.CMSAttribute]) -> None:
    signer_info["unsigned_attrs"] = cms.CMSAttributes(attrs)


def add_signature_timestamp(signed: cms.SignedData, make_token: TokenMaker) -> bool:
    """CAdES-T: a signature-time-stamp over the signature value, unless one is there."""
    signer_info = signed["signer_infos"][0]
    if SIGNATURE_TIME_STAMP in unsigned_attr_types(signer_info):
        return False
    token = make_token(_sha256(signer_info["signature"].native))
    attr = cms.CMSAttribute({"type": "signature_time_stamp_token", "values": [token]})
    _set_unsigned(signer_info, [*_unsigned(signer_info), attr])
    return True


def add_certificates(signed: cms.SignedData, certs: list[asn1_x509.Certificate]) -> int:
    """LT: the certificates needed to validate the signature and its timestamps, in
    SignedData.certificates (each once). Returns how many were added."""
    present = signed["certificates"]
    existing = _items(present)
    known = {c.chosen.dump() for c in existing if c.name == "certificate"}
    added = [c for c in certs if c.dump() not in known]
    unique: list[asn1_x509.Certificate] = []
    for cert in added:
        if cert.dump() not in {u.dump() for u in unique}:
            unique.append(cert)
    if unique:
        signed["certificates"] = cms.CertificateSet(
            [*existing, *(cms.CertificateChoices(name="certificate", value=c) for c in unique)]
        )
    return len(unique)


def add_crls(signed: cms.SignedData, crls: list[asn1_crl.CertificateList]) -> int:
    """LT: CRLs of the issuers of the signature's certificates, in SignedData.crls (each
    once; a CRL of an unrelated issuer is left out). Returns how many were added."""
    present = _items(signed["crls"])
    known = {c.chosen.dump() for c in present}
    issuers = {
        c.chosen.issuer.dump() for c in _items(signed["certificates"]) if c.name == "certificate"
    }
    added: list[asn1_crl.CertificateList] = []
    for crl in crls:
        dumped = crl.dump()
        if crl["tbs_cert_list"]["issuer"].dump() not in issuers or dumped in known:
            continue
        known.add(dumped)
        added.append(crl)
    if added:
        signed["crls"] = cms.RevocationInfoChoices(
            [*present, *(cms.RevocationInfoChoice(name="crl", value=c) for c in added)]
        )
    return len(added)


def hash_index(
    signed: cms.SignedData, *, exclude: cms.CMSAttribute | None = None
) -> AtsHashIndexV3:
    """The ats-hash-index-v3 of the signature as it stands (SHA-256)."""
    certs = signed["certificates"]
    crls = signed["crls"]
    values = []
    for attr in _unsigned(signed["signer_infos"][0]):
        if exclude is not None and attr.dump() == exclude.dump():
            continue
        for value in attr["values"]:
            values.append(_sha256(attr["type"].dump() + value.dump()))
    return AtsHashIndexV3(
        {
            "certificates_hash_index": [_sha256(c.dump()) for c in _items(certs)],
            "crls_hash_index": [_sha256(c.dump()) for c in _items(crls)],
            "unsigned_attr_values_hash_index": values,
        }
    )


def ats_v3_imprint(signed: cms.SignedData, content_sha256: bytes, index_der: bytes) -> bytes:
    """The SHA-256 message imprint of an archive-time-stamp-v3 (EN 319 122-1 §5.5.3):
    eContentType, the content's hash, the SignerInfo fields up to the signature, the index."""
    signer_info = signed["signer_infos"][0]
    parts = [signed["encap_content_info"]["content_type"].dump(), content_sha256]
    for name in ("version", "sid", "digest_algorithm", "signed_attrs", "signature_algorithm"):
        parts.append(signer_info[name].dump())
    parts.append(signer_info["signature"].dump())
    parts.append(index_der)
    return _sha256(b"".join(parts))


def add_archive_timestamp_v3(
    signed: cms.SignedData, content_sha256: bytes, make_token: TokenMaker
) -> cms.ContentInfo:
    """Add an archive-time-stamp-v3 covering everything present (earlier ATS included):
    the hash index goes into the token's own unsigned attributes. Returns the token."""
    index = hash_index(signed)
    token = make_token(ats_v3_imprint(signed, content_sha256, index.dump()))
    token_signer = token["content"]["signer_infos"][0]
    index_attr = cms.CMSAttribute({"type": ATS_HASH_INDEX_V3, "values": [index]})
    _set_unsigned(token_signer, [*_unsigned(token_signer), index_attr])
    signer_info = signed["signer_infos"][0]
    ats = cms.CMSAttribute({"type": ATS_V3, "values": [token]})
    _set_unsigned(signer_info, [*_unsigned(signer_info), ats])
    return token


@dataclass
class AtsCheck:
    """The check of one archive-time-stamp-v3: ``problem`` is None when it holds."""

    gen_time: datetime | None
    problem: str | None


def _token_index(token: cms.ContentInfo) -> tuple[AtsHashIndexV3, bytes] | None:
    """The token's hash index, parsed and as its exact DER (the imprint hashes the DER)."""
    for attr in _unsigned(token["content"]["signer_infos"][0]):
        if attr["type"].dotted == ATS_HASH_INDEX_V3:
            der: bytes = attr["values"][0].dump()
            return load_hash_index(der), der
    return None


def check_archive_timestamps(signed: cms.SignedData, content_sha256: bytes) -> list[AtsCheck]:
    """Recompute every archive-time-stamp-v3: its message imprint from the signature and the
    token's hash index, and that every item the index covers is still present (an item may
    be added later, never removed or changed). The token's own signature is checked by the
    caller (pyHanko ``validate_tst_signed_data``)."""
    signer_info = signed["signer_infos"][0]
    checks: list[AtsCheck] = []
    current = hash_index(signed)
    present = {
        "certificates_hash_index": {h.native for h in current["certificates_hash_index"]},
        "crls_hash_index": {h.native for h in current["crls_hash_index"]},
        "unsigned_attr_values_hash_index": {
            h.native for h in current["unsigned_attr_values_hash_index"]
        },
    }
    for attr in _unsigned(signer_info):
        if attr["type"].dotted != ATS_V3:
            continue
        token = cms.ContentInfo.load(attr["values"][0].dump())
        info = token["content"]["encap_content_info"]["content"].parsed
        gen_time = info["gen_time"].native
        found = _token_index(token)
        if found is None:
            checks.append(AtsCheck(gen_time, "archive-time-stamp-v3 without ats-hash-index-v3"))
            continue
        index, index_der = found
        if index["hash_ind_algorithm"]["algorithm"].native != "sha256":
            checks.append(AtsCheck(gen_time, "hash index algorithm other than SHA-256"))
            continue
        imprint = info["message_imprint"]
        expected = ats_v3_imprint(signed, content_sha256, index_der)
        if (
            imprint["hash_algorithm"]["algorithm"].native != "sha256"
            or imprint["hashed_message"].native != expected
        ):
            checks.append(AtsCheck(gen_time, "message imprint does not match the signature"))
            continue
        missing = [
            name
            for name, found in present.items()
            if any(h.native not in found for h in index[name])
        ]
        problem = f"covered items missing or changed ({', '.join(missing)})" if missing else None
        checks.append(AtsCheck(gen_time, problem))
    return checks


# --- archive-time-stamp-v2 (ETSI TS 101 733 §6.4.1, Annex K): verified, never added ---------


def _der_length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def ats_v2_imprints(
    signed: cms.SignedData, position: int, content: bytes | None, algorithm: str
) -> tuple[bytes, bytes]:
    """The two message imprints TS 101 733 allows for the archive-time-stamp-v2 that is the
    signer's ``position``-th unsigned attribute: the hash of the encapContentInfo, the
    detached content (``content``; None for an attached signature), the certificates and
    crls fields as encoded, the SignerInfo's fields up to the signature, and the unsigned
    attributes before this one, as one ``[1]`` element (V2.2.1) or, as V1.8.3 wrote it,
    without that tag and length (Annex K, Table K.3, note 3: check both)."""
    signer_info = signed["signer_infos"][0]
    parts = [signed["encap_content_info"].dump()]
    if content is not None:
        parts.append(content)
    for name in ("certificates", "crls"):
        if not isinstance(signed[name], core.Void):
            parts.append(signed[name].dump())
    for name in ("version", "sid", "digest_algorithm", "signed_attrs", "signature_algorithm"):
        if not isinstance(signer_info[name], core.Void):
            parts.append(signer_info[name].dump())
    parts.append(signer_info["signature"].dump())
    earlier = b"".join(attr.dump() for attr in _unsigned(signer_info)[:position])
    head = b"".join(parts)
    with_tag = head + (b"\xa1" + _der_length(len(earlier)) + earlier if earlier else b"")
    return (
        hashlib.new(algorithm, with_tag).digest(),
        hashlib.new(algorithm, head + earlier).digest(),
    )


_HASHLIB = {"sha1": "sha1", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512"}


def check_archive_timestamps_v2(signed: cms.SignedData, content: bytes | None) -> list[AtsCheck]:
    """Recompute the imprint of every archive-time-stamp-v2 present (``content``: the
    detached document; None when the signature is attached). The token's own signature is
    checked by the caller, as for v3."""
    checks: list[AtsCheck] = []
    for position, attr in enumerate(_unsigned(signed["signer_infos"][0])):
        if attr["type"].dotted != ATS_V2:
            continue
        token = cms.ContentInfo.load(attr["values"][0].dump())
        info = token["content"]["encap_content_info"]["content"].parsed
        imprint = info["message_imprint"]
        algorithm = _HASHLIB.get(imprint["hash_algorithm"]["algorithm"].native)
        if algorithm is None:
            checks.append(AtsCheck(info["gen_time"].native, "unsupported imprint algorithm"))
            continue
        expected = ats_v2_imprints(signed, position, content, algorithm)
        matches = imprint["hashed_message"].native in expected
        problem = None if matches else "archive-time-stamp-v2 imprint does not match"
        checks.append(AtsCheck(info["gen_time"].native, problem))
    return checks
