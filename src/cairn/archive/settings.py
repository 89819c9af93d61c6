"""The archive's own settings (``CAIRN_ARCHIVE_*``, ``CAIRN_TSA_URL``), read beside the core
``Settings`` so the area adds knobs without touching the shared settings class."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ArchiveSettings"]


class ArchiveSettings(BaseSettings):
    """Trust roots, timestamp authority, plugins and dates of the signed archive."""

    model_config = SettingsConfigDict(env_prefix="CAIRN_", extra="ignore")

    archive_trust_roots: Path | None = Field(
        default=None,
        description="Folder of PEM or DER CA certificates signatures must chain to, and of "
        "CRLs added to signatures when enhancing (LT); empty trusts nothing, so every "
        "signer is reported untrusted.",
    )
    tsa_url: str = Field(
        default="",
        description="RFC 3161 timestamp authority URL; empty uses cairn's own TSA.",
    )
    archive_fetch_ocsp: bool = Field(
        default=True,
        description="When enhancing, ask the OCSP responder a signer's certificate names (its "
        "AIA extension) and add the checked answer to the signature (LT); off: only the CRLs "
        "at hand are used.",
    )
    archive_fetch_crls: bool = Field(
        default=False,
        description="When enhancing, download the CRLs the certificates of the signer's and "
        "the timestamp's paths name (cRLDistributionPoints, http only, at most 8 MiB and 10 s "
        "each), use them for the revocation check and add them to the signature (LT); off: "
        "only the CRLs at hand (CAIRN_ARCHIVE_TRUST_ROOTS) and OCSP are used.",
    )
    archive_plugins: Path | None = Field(
        default=None,
        description="Folder holding plugin-config.json (storage and post-processing plugins).",
    )
    archive_restamp_margin_days: int = Field(
        default=30,
        ge=0,
        description="Days before the earliest expiry at which the next archive timestamp is due.",
    )
    archive_time_zone: str = Field(
        default="UTC",
        description="IANA time zone of dates sent without a time (ArchiveDate=21.07.2030).",
    )
    archive_worker: bool = Field(
        default=True,
        description="Run the enhancement worker inside `cairn serve` (off: run "
        "`cairn archive worker` separately).",
    )
    archive_fixity_days: float = Field(
        default=30,
        gt=0,
        description="Days between two fixity checks (re-hashing) of one container's documents "
        "and signatures; the worker checks a few containers per round.",
    )
    archive_max_signatures: int = Field(
        default=64, ge=1, description="Most signatures one container may hold."
    )
    archive_max_signature_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="Largest single signature accepted (413 above).",
    )
