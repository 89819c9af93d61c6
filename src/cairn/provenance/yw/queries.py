"""Prospective lineage over a view: what is upstream or downstream of a data item, the
workflow's inputs and outputs, and whether an output depends on an input.

Lineage is the transitive closure over the view's read and write edges (data -> step ->
data ...), the regular path query YesWorkflow's Q1-Q4 answer in Prolog. Each answer carries
the node keys of its subgraph, so it can be drawn with :func:`cairn.provenance.yw.graph.to_dot`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cairn.provenance.yw.graph import Resource
from cairn.provenance.yw.view import View

Files = Mapping[int, Sequence[Resource]]

__all__ = ["Lineage", "closure", "depends", "downstream", "inputs", "outputs", "upstream"]


@dataclass
class Lineage:
    """The data items and steps an answer names, and the graph nodes to draw it."""

    query: str
    subject: str | None
    data: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    keep: set[str] = field(default_factory=set)
    files: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "subject": self.subject,
            "data": self.data,
            "steps": self.steps,
            "files": self.files,
        }


def closure(view: View, start: list[int], *, forward: bool) -> tuple[set[int], set[int]]:
    """Data nodes and steps reachable from the data nodes ``start`` (themselves included)."""
    readers: dict[int, set[int]] = {}
    writers: dict[int, set[int]] = {}
    for data, step in view.reads:
        readers.setdefault(data, set()).add(step)
    for step, data in view.writes:
        writers.setdefault(data, set()).add(step)
    step_out: dict[int, set[int]] = {}
    step_in: dict[int, set[int]] = {}
    for step, data in view.writes:
        step_out.setdefault(step, set()).add(data)
    for data, step in view.reads:
        step_in.setdefault(step, set()).add(data)
    seen_data, seen_steps = set(start), set()
    queue = deque(start)
    while queue:
        data = queue.popleft()
        for step in (readers if forward else writers).get(data, ()):
            if step in seen_steps:
                continue
            seen_steps.add(step)
            for nxt in (step_out if forward else step_in).get(step, ()):
                if nxt not in seen_data:
                    seen_data.add(nxt)
                    queue.append(nxt)
    return seen_data, seen_steps


def _lineage(
    view: View,
    query: str,
    subject: str | None,
    data: set[int],
    steps: set[int],
    files: Files | None,
) -> Lineage:
    order = {d: i for i, d in enumerate(sorted(view.data))}
    ordered = sorted(data, key=order.__getitem__)
    return Lineage(
        query=query,
        subject=subject,
        data=[view.data[d].name for d in ordered],
        steps=[view.model.programs[s].name for s in sorted(steps)],
        keep={f"d{d}" for d in data} | {f"s{s}" for s in steps},
        files=[
            {"path": r.path, "sha256": r.sha256, "data": view.data[d].name}
            for d in ordered
            for r in (files or {}).get(d, ())
        ],
    )


def _start(view: View, name: str, files: Files | None) -> list[int]:
    """The data nodes a query starts from: ``name`` as a file of the run, or a data item."""
    bound = [d for d, found in (files or {}).items() if any(r.path == name for r in found)]
    return bound or view.find_data(name)


def upstream(view: View, name: str, files: Files | None = None) -> Lineage:
    """Everything ``name`` was made from: the steps and data items before it.

    With ``files`` (the run's files per data node, from recon: the hybrid graph) ``name`` may
    also be a file of the run, and the answer lists the run's files of each data item in it.
    """
    data, steps = closure(view, _start(view, name, files), forward=False)
    return _lineage(view, "upstream", name, data, steps, files)


def downstream(view: View, name: str, files: Files | None = None) -> Lineage:
    """Everything made from ``name``: the steps and data items after it (``files``: as for
    :func:`upstream`)."""
    data, steps = closure(view, _start(view, name, files), forward=True)
    return _lineage(view, "downstream", name, data, steps, files)


def inputs(view: View, files: Files | None = None) -> Lineage:
    """The workflow's inputs (its in-ports, or what no shown step produces)."""
    return _lineage(view, "inputs", None, set(view.inputs), set(), files)


def outputs(view: View, files: Files | None = None) -> Lineage:
    """The workflow's outputs (its out-ports, or what no shown step reads)."""
    return _lineage(view, "outputs", None, set(view.outputs), set(), files)


def depends(view: View, output: str, on: str | None = None) -> dict[str, Any]:
    """Whether ``output`` depends on the input ``on``, or on each workflow input.

    Returns ``{"output", "inputs": {name: bool}, "depends": bool}``: ``depends`` is true when
    ``output`` depends on ``on`` or, without ``on``, on every input.
    """
    upstream_data, _ = closure(view, view.find_data(output), forward=False)
    candidates = view.find_data(on) if on is not None else view.inputs
    answers: dict[str, bool] = {}
    for node in candidates:
        name = view.data[node].name
        answers[name] = answers.get(name, False) or node in upstream_data
    return {
        "output": output,
        "inputs": answers,
        "depends": bool(answers) and all(answers.values()),
    }
