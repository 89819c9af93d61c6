"""Password policy and argon2 hashing."""

from __future__ import annotations

import string
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from cairn.errors import WeakPassword

__all__ = ["check_password_policy", "hash_password", "password_problems", "verify_password"]

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the user is unknown, so both failures take the same time.

    Made on first use, not at import: hashing is deliberately slow and every CLI command
    imports this module."""
    return _hasher.hash("cairn-dummy-password")


MIN_LENGTH = 8


def password_problems(password: str) -> list[str]:
    """Every rule of the policy that ``password`` breaks (empty when it is acceptable)."""
    rules = [
        (len(password) >= MIN_LENGTH, f"at least {MIN_LENGTH} characters"),
        (any(c.isupper() for c in password), "an upper-case letter"),
        (any(c.islower() for c in password), "a lower-case letter"),
        (any(c.isdigit() for c in password), "a digit"),
        (any(c in string.punctuation for c in password), "a special character"),
    ]
    return [rule for ok, rule in rules if not ok]


def check_password_policy(password: str) -> None:
    problems = password_problems(password)
    if problems:
        raise WeakPassword(
            "Password must contain " + ", ".join(problems) + ".", detail={"unmet": problems}
        )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        matched = _hasher.verify(password_hash or _dummy_hash(), password)
        return matched and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False
