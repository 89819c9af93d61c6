"""Container statuses: numbers fixed once (the wire shows them), names and descriptions.

Never renumber: source systems store these numbers. 4 is "archived" as in CryptoPro Archive.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["DESCRIPTIONS", "ContainerStatus", "SaveType"]


class ContainerStatus(IntEnum):
    RECEIVED = 0
    VERIFYING = 1
    VERIFIED = 2
    ENHANCING = 3
    ARCHIVED = 4
    RESTAMP_DUE = 5
    STORAGE_ENDED = 6
    ERROR = 7
    DELETED = 8


DESCRIPTIONS: dict[ContainerStatus, tuple[str, str]] = {
    ContainerStatus.RECEIVED: ("Received", "Stored as uploaded; verification has not started."),
    ContainerStatus.VERIFYING: ("Verifying", "The signatures are being verified."),
    ContainerStatus.VERIFIED: (
        "Verified",
        "Every signature verified; waiting for enhancement (timestamps).",
    ),
    ContainerStatus.ENHANCING: (
        "Enhancing",
        "Timestamps and validation data are being added (CAdES-T, LT, then A).",
    ),
    ContainerStatus.ARCHIVED: (
        "Archival storage",
        "Every signature is CAdES-A: the archive keeps it provably valid.",
    ),
    ContainerStatus.RESTAMP_DUE: (
        "Re-stamp due",
        "The next archive timestamp is due (signatureUpdateDate has passed).",
    ),
    ContainerStatus.STORAGE_ENDED: (
        "Storage ended",
        "A Temporary container past its ArchiveDate: the document is removed, a tombstone kept.",
    ),
    ContainerStatus.ERROR: (
        "Error",
        "Verification or enhancement failed; the reason is in the container's details.",
    ),
    ContainerStatus.DELETED: ("Deleted", "Deleted by its organisation; a tombstone is kept."),
}


class SaveType(IntEnum):
    """How long a container is kept: until its ArchiveDate, or for good."""

    TEMPORARY = 1
    PERMANENT = 2
