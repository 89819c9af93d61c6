"""What a component function sees while it runs in a worker: its inputs, options and outputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ComponentContext", "Output"]


@dataclass(frozen=True)
class Output:
    """One output data item: its files (all of ``file_type``) and name."""

    name: str
    file_type: str
    paths: Sequence[Path]


@dataclass
class ComponentContext:
    """Handed to a component function. ``inputs[n]`` holds the local files of input ``n + 1``;
    write outputs under ``work_dir`` and declare them with ``add_output``."""

    inputs: Sequence[Sequence[Path]]
    options: Mapping[str, Any]
    work_dir: Path
    outputs: list[Output] = field(default_factory=list)
    _send: Callable[[str, Any], None] = field(default=lambda kind, value: None, repr=False)

    def add_output(self, name: str, file_type: str, *paths: Path) -> None:
        self.outputs.append(Output(name, file_type, list(paths)))

    def log(self, message: str) -> None:
        self._send("log", message)

    def progress(self, percent: int) -> None:
        """Progress of this component, 0-100."""
        self._send("progress", max(0, min(100, int(percent))))
