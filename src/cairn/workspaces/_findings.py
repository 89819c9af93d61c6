"""The findings of one upload as they are made, and ``Abort``, the fatal one that stops it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from cairn.workspaces import _checks as ck
from cairn.workspaces._checks import Finding

__all__ = ["Abort", "FindingLog"]


class Abort(Exception):
    """A limit was crossed: stop processing the whole upload."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(finding.message)
        self.finding = finding


@dataclass
class FindingLog:
    """Findings in the order they were made, and the public paths sanitizing removed."""

    findings: list[Finding] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # junk, hidden, empty, links ...
    _reported: set[tuple[str, str]] = field(default_factory=set)

    def add(self, level: ck.Level, path: str | None, message: str) -> None:
        self.findings.append(Finding(level, path, message))

    def once(self, key: tuple[str, str], level: ck.Level, path: str | None, message: str) -> bool:
        """Add a finding unless one with ``key`` was added before; whether it was added."""
        if key in self._reported:
            return False
        self._reported.add(key)
        self.add(level, path, message)
        return True

    def corrupt(self, shown: str, path: str | None, exc: BaseException) -> None:
        """The fatal finding for an archive that could not be read (arXiv's wording)."""
        detail = ck.display_name(str(exc) or type(exc).__name__)
        self.add(
            "fatal",
            path,
            f"There were problems unpacking '{shown}'. Please try again and confirm your "
            f"files. Error: {detail}",
        )

    def corrupt_inner(self, shown: str, exc: BaseException, *, lost: str | None) -> None:
        """The warning for an archive inside the upload that broke part way: its readable
        members were kept, and the one being read when it broke (if any) is named."""
        detail = ck.display_name(str(exc) or type(exc).__name__)
        left_out = f" '{lost}' could not be read and was left out." if lost else ""
        self.add(
            "warn",
            shown,
            f"There were problems unpacking '{shown}'. Its readable files were kept.{left_out} "
            f"Please check your files. Error: {detail}",
        )

    def move_paths(self, move: Callable[[str | None], str | None]) -> None:
        """Point every finding and removed path at ``move(path)`` (the top level was flattened).

        Removed paths that move to ``None`` are dropped.
        """
        self.findings = [replace(f, public_path=move(f.public_path)) for f in self.findings]
        self.removed = [moved for p in self.removed if (moved := move(p)) is not None]
