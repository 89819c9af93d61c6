"""Lineage graphs with Graphviz, styled like RunManager's figures: runs are black boxes
labelled with the script's name, files rounded orange-yellow boxes labelled with theirs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from cairn.errors import Invalid
from cairn.provenance.service import Lineage

__all__ = ["FORMATS", "render", "to_dot"]

FORMATS = ("svg", "png", "dot")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(found: Lineage) -> str:
    """The lineage as a DOT digraph: file -> run for what a run used, run -> file for what it
    generated. Files are keyed by version, so two versions at one path are two nodes."""
    lines = [
        "digraph lineage {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica" fontsize=10];',
    ]
    shown: set[int] = set()
    for file in found.files:
        shown.add(file.id)
        label = f"{os.path.basename(file.path) or file.path}\\n{(file.sha256 or '')[:12]}"
        lines.append(
            f'  f{file.id} [label="{label.replace(chr(34), chr(39))}" shape=box '
            'style="rounded,filled" fillcolor="#FFD27F" color="#CC8400"];'
        )
    for view in found.runs:
        run = view.run
        name = os.path.basename(run.script or run.kind) or run.kind
        lines.append(
            f"  r{run.seq} [label={_quote(f'{name} #{run.seq}')} shape=box style=filled "
            "fillcolor=black fontcolor=white];"
        )
        for version, _access in view.used:
            if version.id in shown:
                lines.append(f"  f{version.id} -> r{run.seq};")
        for version in view.generated:
            if version.id in shown:
                lines.append(f"  r{run.seq} -> f{version.id};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(found: Lineage, output: str | os.PathLike[str]) -> Path:
    """Write the graph to ``output``; the format comes from its suffix (.svg, .png, .dot)."""
    target = Path(output)
    fmt = target.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise Invalid(f"cannot draw to {target.name!r}: use a .svg, .png or .dot file")
    dot = to_dot(found)
    if fmt == "dot":
        target.write_text(dot, encoding="utf-8")
        return target
    program = shutil.which("dot")
    if program is None:
        raise Invalid("drawing to SVG or PNG needs Graphviz's `dot` (apt install graphviz)")
    done = subprocess.run(
        [program, f"-T{fmt}", "-o", str(target)], input=dot.encode(), capture_output=True
    )
    if done.returncode != 0:
        raise Invalid(f"Graphviz failed: {done.stderr.decode(errors='replace').strip()}")
    return target
