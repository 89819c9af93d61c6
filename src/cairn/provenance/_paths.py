"""Paths as the provenance store keeps them: absolute, normalised, always valid text.

A path whose bytes are not UTF-8 is kept with each undecodable byte written ``\\xNN`` (and the
version flagged), because PostgreSQL text cannot hold lone surrogates; ``path_key`` is the
SHA-256 of the stored text, so joins by path use a short index.
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["NON_UTF8", "absolute", "path_key", "stored_path"]

NON_UTF8 = "non-UTF-8 path (undecodable bytes shown as \\xNN)"


def absolute(path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> str:
    """``path`` made absolute against the current folder, ``..`` folded, links not resolved
    (a script that reads through a symlink is recorded at the path it used)."""
    text = os.fsdecode(path)
    return os.path.normpath(os.path.join(os.getcwd(), text))


def stored_path(path: str) -> tuple[str, bool]:
    """The text stored for ``path`` (from ``os.fsdecode``), and whether it had to be escaped."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raw = path.encode("utf-8", "surrogateescape")
        return raw.decode("utf-8", "backslashreplace"), True
    return path, False


def path_key(path: str) -> str:
    return hashlib.sha256(path.encode("utf-8")).hexdigest()
