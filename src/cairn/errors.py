"""Domain exceptions shared by every area, the SDK and the CLI.

Services raise these; they never know about HTTP. ``cairn.api.errors`` maps each class to a
status code, and ``cairn.client`` turns problem+json answers back into the same classes, so
``except NotFound`` works locally and remotely.

    CairnError
     ├── Invalid               bad input (422)
     │    ├── BadRequest          a request missing what it needs (400; arXiv's contract)
     │    └── WeakPassword
     ├── Unauthorized          missing, wrong, expired or revoked credentials (401)
     ├── Forbidden             known caller, not allowed (403)
     ├── NotFound              absent, or another organisation's (404)
     │    └── BlobMissing
     ├── Conflict              clashes with current state (409)
     ├── PaymentRequired       not enough credits (402)
     ├── TooLarge              over a configured size limit (413)
     └── IntegrityError        stored bytes no longer match their hash (500, never silent)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadRequest",
    "BlobMissing",
    "CairnError",
    "Conflict",
    "Forbidden",
    "IntegrityError",
    "Invalid",
    "NotFound",
    "PaymentRequired",
    "TooLarge",
    "Unauthorized",
    "WeakPassword",
    "error_for_code",
]


class CairnError(Exception):
    """Base of every cairn error; ``code`` is stable and travels over the wire."""

    code = "error"
    title = "Error"

    def __init__(self, message: str, *, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class Invalid(CairnError):
    code = "invalid"
    title = "Invalid input"


class BadRequest(Invalid):
    code = "bad-request"
    title = "Bad request"


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
