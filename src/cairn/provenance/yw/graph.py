"""Graphviz graphs of a view, styled like YesWorkflow's, and rendering through ``dot``.

Steps are green boxes, data yellow rounded boxes (parameters white), concrete files of a hybrid
graph orange rounded boxes with a short hash; opened workflows are dashed clusters.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cairn.errors import CairnError, Invalid
from cairn.provenance.yw.view import View

__all__ = ["FORMATS", "VIEWS", "GraphvizMissing", "Resource", "render", "to_dot"]

VIEWS = ("process", "data", "combined")
FORMATS = ("dot", "gv", "svg", "png", "pdf")

STEP = 'shape=box style=filled fillcolor="#CCFFCC" peripheries=1 fontname=Courier'
DATA = 'shape=box style="rounded,filled" fillcolor="#FFFFCC" peripheries=1 fontname=Helvetica'
PARAM = 'shape=box style="rounded,filled" fillcolor="#FCFCFC" peripheries=1 fontname=Helvetica'
FILE = 'shape=box style="rounded,filled" fillcolor="#FFCC99" peripheries=1 fontname=Helvetica'


class GraphvizMissing(CairnError):
    code = "graphviz-missing"
    title = "Graphviz is not installed"


@dataclass(frozen=True)
class Resource:
    """A concrete file standing for a data item in a hybrid graph."""

    id: int
    path: str
    sha256: str | None = None


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(
    view: View,
    kind: str = "combined",
    *,
    keep: Collection[str] | None = None,
    resources: Mapping[int, Sequence[Resource]] | None = None,
    title: str | None = None,
) -> str:
    """DOT text for ``view`` in the ``process``, ``data`` or ``combined`` view.

    ``keep`` limits the graph to these node keys (``s<program id>``, ``d<data id>``), for
    query subgraphs. ``resources`` (combined view) expands each data node into its files.
    """
    if kind not in VIEWS:
        raise Invalid(f"unknown view {kind!r}; choose one of {', '.join(VIEWS)}")
    model = view.model
    files = resources or {}

    def kept(key: str) -> bool:
        return keep is None or key in keep

    lines = [
        "digraph Workflow {",
        "rankdir=LR",
        "fontname=Courier; fontsize=18; labelloc=t",
        f"label={_quote(title or view.title)}",
    ]
    members: dict[int | None, list[str]] = {}

    def place(cluster: int | None, line: str) -> None:
        members.setdefault(cluster, []).append(line)

    if kind in ("process", "combined"):
        for step in view.steps:
            if kept(f"s{step}"):
                label = _quote(model.programs[step].name)
                place(view.step_cluster[step], f"s{step} [label={label} {STEP}]")
    if kind in ("data", "combined"):
        for node in view.data.values():
            if not kept(f"d{node.id}"):
                continue
            if kind == "combined" and files.get(node.id):
                for res in files[node.id]:
                    label = res.path + (f"\n{res.sha256[:12]}" if res.sha256 else "")
                    place(node.cluster, f"r{res.id}_{node.id} [label={_quote(label)} {FILE}]")
                continue
            style = PARAM if node.is_param else DATA
            place(node.cluster, f"d{node.id} [label={_quote(node.name)} {style}]")

    def emit_cluster(cluster: int | None, indent: str) -> None:
        lines.extend(indent + line for line in members.get(cluster, []))
        for child, parent in view.clusters.items():
            if parent == cluster:
                name = model.programs[child].name
                lines.append(f"{indent}subgraph cluster_{child} {{")
                lines.append(f"{indent}  label={_quote(name)}; style=dashed; fontname=Courier")
                emit_cluster(child, indent + "  ")
                lines.append(f"{indent}}}")

    emit_cluster(None, "")
    lines.append("edge[fontname=Helvetica]")
    lines.extend(_edges(view, kind, kept, files))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _edges(
    view: View,
    kind: str,
    kept: Callable[[str], bool],
    files: Mapping[int, Sequence[Resource]],
) -> list[str]:
    model = view.model
    edges: list[str] = []
    if kind == "combined":

        def ends(node: int) -> list[str]:
            return [f"r{r.id}_{node}" for r in files[node]] if files.get(node) else [f"d{node}"]

        for data, step in sorted(view.reads):
            if kept(f"d{data}") and kept(f"s{step}"):
                edges.extend(f"{end} -> s{step}" for end in ends(data))
        for step, data in sorted(view.writes):
            if kept(f"d{data}") and kept(f"s{step}"):
                edges.extend(f"s{step} -> {end}" for end in ends(data))
    elif kind == "process":
        readers: dict[int, list[int]] = {}
        for data, step in sorted(view.reads):
            readers.setdefault(data, []).append(step)
        for writer, data in sorted(view.writes):
            for reader in readers.get(data, []):
                if kept(f"s{writer}") and kept(f"s{reader}") and kept(f"d{data}"):
                    label = _quote(view.data[data].name)
                    edges.append(f"s{writer} -> s{reader} [label={label}]")
    else:
        made: dict[int, list[int]] = {}
        for step, data in sorted(view.writes):
            made.setdefault(step, []).append(data)
        for data_in, step in sorted(view.reads):
            for data_out in made.get(step, []):
                if kept(f"d{data_in}") and kept(f"d{data_out}") and kept(f"s{step}"):
                    label = _quote(model.programs[step].name)
                    edges.append(f"d{data_in} -> d{data_out} [label={label}]")
    return edges


def render(dot_text: str, path: str | Path) -> Path:
    """Write ``dot_text`` to ``path``: as is for ``.dot``/``.gv``, else rendered by ``dot``.

    Raises:
        Invalid: an output format Graphviz is not asked for here.
        GraphvizMissing: ``dot`` is not on PATH.
        CairnError: ``dot`` failed (its message included).
    """
    target = Path(path)
    fmt = target.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise Invalid(f"{target}: unknown output format {fmt or '(none)'!r}; use .svg, .png, .dot")
    if not target.parent.is_dir():
        raise Invalid(f"{target.parent}: no such folder")
    if fmt in ("dot", "gv"):
        target.write_text(dot_text, encoding="utf-8")
        return target
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissing(
            "Graphviz's dot is not installed (apt-get install graphviz); write .dot instead"
        )
    done = subprocess.run(
        [dot, f"-T{fmt}", "-o", str(target)],
        input=dot_text.encode(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise CairnError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
    return target
