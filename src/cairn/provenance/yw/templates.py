"""URI templates (``@uri file:{dir}/out_{year}.csv``) and log-line templates (``@log``).

A URI template is an optional scheme (``file:``), then a path whose ``{name}`` parts are
variables and ``{}`` an anonymous one. Matching follows YesWorkflow: the constant fragments in
order, each variable the (non-blank) text up to the next fragment; a variable repeated in one
template must bind the same text each time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

__all__ = ["LogTemplate", "UriTemplate", "normalise_path"]

_VARIABLE = re.compile(r"\{([^{}]*)\}")
# two letters at least, so that a Windows drive (C:) is no scheme
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


def normalise_path(path: str) -> str:
    """A path as templates see it: ``\\`` as ``/``, no ``./`` prefix, no doubled or trailing
    slashes."""
    path = path.replace("\\", "/")
    path = re.sub(r"/{2,}", "/", path)
    while path.startswith("./"):
        path = path[2:]
    return path.rstrip("/") if len(path) > 1 else path


def _names(text: str) -> list[str]:
    names: list[str] = []
    for match in _VARIABLE.finditer(text):
        name = match.group(1).strip()
        if name and name not in names:
            names.append(name)
    return names


def _pattern(text: str, variable: str) -> tuple[re.Pattern[str], list[str]]:
    """A regex for ``text`` with ``{name}`` variables, and the named variables in order."""
    names: list[str] = []
    parts: list[str] = []
    seen: dict[str, str] = {}
    pos = 0
    for match in _VARIABLE.finditer(text):
        parts.append(re.escape(text[pos : match.start()]))
        name = match.group(1).strip()
        if not name:
            parts.append(f"(?:{variable})")
        elif name in seen:
            parts.append(f"(?P={seen[name]})")
        else:
            group = f"v{len(seen)}"
            seen[name] = group
            names.append(name)
            parts.append(f"(?P<{group}>{variable})")
        pos = match.end()
    parts.append(re.escape(text[pos:]))
    return re.compile("".join(parts)), names


@dataclass(frozen=True)
class UriTemplate:
    """A port's ``@uri``/``@file`` template."""

    text: str

    @cached_property
    def scheme(self) -> str | None:
        match = _SCHEME.match(self.text)
        return match.group(1) if match else None

    @cached_property
    def path(self) -> str:
        """The template's path part: scheme dropped, slashes normalised."""
        rest = self.text[len(self.scheme) + 1 :] if self.scheme else self.text
        return normalise_path(rest)

    @cached_property
    def _compiled(self) -> tuple[re.Pattern[str], list[str]]:
        return _pattern(self.path, r"\S+?")

    @property
    def variables(self) -> list[str]:
        """Named variables in order of first appearance (``{}`` makes none)."""
        return _names(self.path)

    @cached_property
    def _key(self) -> str:
        """The longest constant fragment: a path without it cannot match."""
        return max(_VARIABLE.split(self.path)[::2], key=len)

    def match(self, path: str, *, normalised: bool = False) -> dict[str, str] | None:
        """The variable bindings when ``path`` matches the whole template, else None
        (``normalised``: the caller already passed ``path`` through :func:`normalise_path`)."""
        if not normalised:
            path = normalise_path(path)
        if self._key not in path:
            return None  # a constant part is missing: no need to run the regex
        pattern, names = self._compiled
        found = pattern.fullmatch(path)
        if found is None:
            return None
        return {name: found.group(f"v{i}") for i, name in enumerate(names)}


@dataclass(frozen=True)
class LogTemplate:
    """An ``@log`` line template: literal text with ``{name}`` variables; runs of white space
    match any white space."""

    text: str

    @cached_property
    def _compiled(self) -> tuple[re.Pattern[str], list[str]]:
        squeezed = re.sub(r"\s+", " ", self.text.strip())
        pattern, names = _pattern(squeezed, r".*?")
        return re.compile(pattern.pattern.replace(r"\ ", r"\s+")), names

    @property
    def variables(self) -> list[str]:
        return _names(self.text)

    def match(self, line: str) -> dict[str, str] | None:
        pattern, names = self._compiled
        found = pattern.fullmatch(line.strip())
        if found is None:
            return None
        return {name: found.group(f"v{i}") for i, name in enumerate(names)}
