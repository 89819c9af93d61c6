"""Domain exceptions shared by every area, the SDK and the CLI.

Services raise these and never speak HTTP. ``OUTCOMES`` is the one table saying what each kind
becomes at the edges: the HTTP status the API answers with and the exit code of the CLI. The
API, the SDK (which turns an error answer back into the same class, so ``except NotFound`` works
locally and remotely) and the CLI all read it; it lives here because all three sit above this
module and the SDK must not import the server.

    CairnError
     ├── Invalid               bad input (422)
     │    ├── BadRequest          a request missing a part it needs, or malformed (400)
     │    │    ├── PreconditionFailed   a protocol version the server does not speak (412)
     │    │    └── UnsupportedMedia     a body of a type the route does not take (415)
     │    ├── ChecksumMismatch    a body whose checksum is not the one sent with it (460)
     │    └── WeakPassword
     ├── Unauthorized          missing, wrong, expired or revoked credentials (401)
     ├── Forbidden             known caller, not allowed (403)
     ├── NotFound              absent, or another organisation's (404)
     │    ├── BlobMissing
     │    └── Gone                 existed, but expired (410)
     ├── Conflict              clashes with current state (409)
     ├── PaymentRequired       not enough credits (402)
     ├── TooLarge              over a configured size limit (413)
     └── IntegrityError        stored bytes no longer match their hash (500, never silent)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "OUTCOMES",
    "BadRequest",
    "BlobMissing",
    "CairnError",
    "ChecksumMismatch",
    "Conflict",
    "Forbidden",
    "Gone",
    "IntegrityError",
    "Invalid",
    "NotFound",
    "Outcome",
    "PaymentRequired",
    "PreconditionFailed",
    "TooLarge",
    "Unauthorized",
    "UnsupportedMedia",
    "WeakPassword",
    "error_for_code",
    "error_for_status",
    "outcome_for",
]


class CairnError(Exception):
    """Base of every cairn error; ``code`` is stable and travels over the wire.

    ``detail`` holds per-field details. An error the SDK rebuilt from a server's answer also
    carries that answer's ``status_code`` and whole ``problem`` document.
    """

    code = "error"
    title = "Error"

    def __init__(
        self,
        message: str,
        *,
        detail: Any = None,
        status_code: int | None = None,
        problem: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.status_code = status_code
        self.problem: Mapping[str, Any] = problem or {}

    def __str__(self) -> str:
        return self.message


class Invalid(CairnError):
    code = "invalid"
    title = "Invalid input"


class BadRequest(Invalid):
    code = "bad-request"
    title = "Bad request"


class PreconditionFailed(BadRequest):
    code = "precondition-failed"
    title = "Precondition failed"


class UnsupportedMedia(BadRequest):
    code = "unsupported-media-type"
    title = "Unsupported media type"


class ChecksumMismatch(Invalid):
    code = "checksum-mismatch"
    title = "Checksum mismatch"


class WeakPassword(Invalid):
    code = "weak-password"
    title = "Password does not meet the policy"


class Unauthorized(CairnError):
    code = "unauthorized"
    title = "Not authenticated"


class Forbidden(CairnError):
    code = "forbidden"
    title = "Forbidden"


class NotFound(CairnError):
    code = "not-found"
    title = "Not found"


class BlobMissing(NotFound):
    code = "blob-missing"
    title = "Blob missing"


class Gone(NotFound):
    code = "gone"
    title = "Gone"


class Conflict(CairnError):
    code = "conflict"
    title = "Conflict"


class PaymentRequired(CairnError):
    code = "payment-required"
    title = "Not enough credits"


class TooLarge(CairnError):
    code = "too-large"
    title = "Too large"


class IntegrityError(CairnError):
    code = "integrity-error"
    title = "Stored content is corrupted"


@dataclass(frozen=True)
class Outcome:
    """What an error kind becomes at the edges: an HTTP status and a CLI exit code."""

    status: int
    exit_code: int


OUTCOMES: Mapping[type[CairnError], Outcome] = {
    PreconditionFailed: Outcome(412, 2),
    UnsupportedMedia: Outcome(415, 2),
    BadRequest: Outcome(400, 2),
    ChecksumMismatch: Outcome(460, 2),  # tus 1.0's checksum extension names this status
    Invalid: Outcome(422, 2),
    Unauthorized: Outcome(401, 3),
    Forbidden: Outcome(403, 3),
    Gone: Outcome(410, 4),
    NotFound: Outcome(404, 4),
    Conflict: Outcome(409, 5),
    TooLarge: Outcome(413, 6),
    PaymentRequired: Outcome(402, 7),
    IntegrityError: Outcome(500, 1),
    CairnError: Outcome(500, 1),
}


def outcome_for(error: CairnError | type[CairnError]) -> Outcome:
    """The outcome of the nearest class in the error's MRO that ``OUTCOMES`` names."""
    cls = error if isinstance(error, type) else type(error)
    for base in cls.__mro__:
        if base in OUTCOMES:
            return OUTCOMES[base]
    return OUTCOMES[CairnError]


def error_for_status(status: int) -> type[CairnError]:
    """The most general kind answered with ``status`` (for answers without a ``code``)."""
    for cls, outcome in OUTCOMES.items():
        if outcome.status == status and cls is not IntegrityError:
            return cls
    return CairnError


def _all_subclasses(cls: type[CairnError]) -> list[type[CairnError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_all_subclasses(sub))
    return found


def error_for_code(code: str) -> type[CairnError]:
    """The error class whose ``code`` matches, or ``CairnError`` for an unknown code."""
    for cls in _all_subclasses(CairnError):
        if cls.code == code:
            return cls
    return CairnError
