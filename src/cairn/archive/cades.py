"""CAdES structure: the level a signature is at, read from its unsigned attributes.

ETSI EN 319 122-1 levels: BES/EPES (signed attributes only), T (a signature timestamp),
LT / X-L (certificate and revocation values, or them in SignedData), A / LTA (archive
timestamps v2 or v3). asn1crypto does not know the archive-timestamp OIDs; they are compared
as dotted strings.
"""

from __future__ import annotations

from asn1crypto import cms  # type: ignore[import-untyped]

__all__ = ["ATS_HASH_INDEX_V3", "ATS_V2", "ATS_V3", "detect_level", "unsigned_attr_types"]

SIGNATURE_TIME_STAMP = "1.2.840.113549.1.9.16.2.14"
CERTIFICATE_VALUES = "1.2.840.113549.1.9.16.2.23"
REVOCATION_VALUES = "1.2.840.113549.1.9.16.2.24"
ATS_V2 = "1.2.840.113549.1.9.16.2.48"
ATS_V3 = "0.4.0.1733.2.4"
ATS_HASH_INDEX_V3 = "0.4.0.19122.1.5"


def unsigned_attr_types(signer_info: cms.SignerInfo) -> list[str]:
    """The dotted OIDs of the signer's unsigned attributes, in order."""
    attrs = signer_info["unsigned_attrs"]
    if not attrs:
        return []
    return [attr["type"].dotted for attr in attrs]


def detect_level(signed_data: cms.SignedData) -> str:
    """``BES``, ``T``, ``LT`` or ``A``: the highest CAdES level present on the first signer."""
    signer_info = signed_data["signer_infos"][0]
    types = set(unsigned_attr_types(signer_info))
    if types & {ATS_V2, ATS_V3}:
        return "A"
    has_values = bool(types & {CERTIFICATE_VALUES, REVOCATION_VALUES})
    has_crls = bool(signed_data["crls"]) if signed_data["crls"].native is not None else False
    if SIGNATURE_TIME_STAMP in types and (has_values or has_crls):
        return "LT"
    if SIGNATURE_TIME_STAMP in types:
        return "T"
    return "BES"
