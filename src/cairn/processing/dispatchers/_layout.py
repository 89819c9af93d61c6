"""Where a dispatched file goes: one layout for every dispatcher that writes files."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from cairn.processing._context import DispatchedFile

__all__ = ["dispatch_path", "safe_name"]


def safe_name(name: str) -> str:
    """A name fit for one path segment (letters, digits, ``.``, ``-``, ``_``)."""
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "output"


def dispatch_path(file: DispatchedFile) -> str:
    """``<n>_<component>/<data item>/<file>``, relative, below the execution's folder."""
    return "/".join(
        (
            f"{file.chain_index + 1}_{safe_name(file.component)}",
            safe_name(file.data_name),
            safe_name(PurePosixPath(file.file_name.replace("\\", "/")).name),
        )
    )
