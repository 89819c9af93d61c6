"""Prospective lineage over a view: what is upstream or downstream of a data item, the
workflow's inputs and outputs, and whether an output depends on an input.

Lineage is the transitive closure over the view's read and write edges (data -> step ->
data ...), the regular path query YesWorkflow's Q1-Q4 answer in Prolog. Each answer carries
the node keys of its subgraph, so it can be drawn with :func:`cairn.provenance.yw.graph.to_dot`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from cairn.provenance.yw.view import View

__all__ = ["Lineage", "depends", "downstream", "inputs", "outputs", "upstream"]


@dataclass
class Lineage:
    """The data items and steps an answer names, and the graph nodes to draw it."""

    query: str
    subject: str | None
    data: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    keep: set[str] = field(default_factory=set)

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "subject": self.subject,
            "data": self.data,
            "steps": self.steps,
        }


def _closure(view: View, start: list[int], *, forward: bool) -> tuple[set[int], set[int]]:
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
    view: View, query: str, subject: str | None, data: set[int], steps: set[int]
) -> Lineage:
    order = {d: i for i, d in enumerate(sorted(view.data))}
    return Lineage(
        query=query,
        subject=subject,
        data=[view.data[d].name for d in sorted(data, key=order.__getitem__)],
        steps=[view.model.programs[s].name for s in sorted(steps)],
        keep={f"d{d}" for d in data} | {f"s{s}" for s in steps},
    )


def upstream(view: View, name: str) -> Lineage:
    """Everything ``name`` was made from: the steps and data items before it."""
    data, steps = _closure(view, view.find_data(name), forward=False)
    return _lineage(view, "upstream", name, data, steps)


def downstream(view: View, name: str) -> Lineage:
    """Everything made from ``name``: the steps and data items after it."""
    data, steps = _closure(view, view.find_data(name), forward=True)
    return _lineage(view, "downstream", name, data, steps)


def inputs(view: View) -> Lineage:
    """The workflow's inputs (its in-ports, or what no shown step produces)."""
    return _lineage(view, "inputs", None, set(view.inputs), set())


def outputs(view: View) -> Lineage:
    """The workflow's outputs (its out-ports, or what no shown step reads)."""
    return _lineage(view, "outputs", None, set(view.outputs), set())


def depends(view: View, output: str, on: str | None = None) -> dict[str, Any]:
    """Whether ``output`` depends on the input ``on``, or on each workflow input.

    Returns ``{"output", "inputs": {name: bool}, "depends": bool}``: ``depends`` is true when
    ``output`` depends on ``on`` or, without ``on``, on every input.
    """
    upstream_data, _ = _closure(view, view.find_data(output), forward=False)
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
