"""The dataflow graph a reader sees: steps and data items at a chosen nesting depth.

Graphs and queries share it. The root is the single top-level workflow (as YesWorkflow draws
it) or, when a file holds several top-level blocks, the file's own scope. Depth 1 shows the
root's direct steps; each further level opens the workflows one level deeper, drawing their
steps inside a cluster. A workflow's port and the data of the same name inside it are one
node once the workflow is open (they are the two ends of an inflow or outflow channel).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cairn.errors import Invalid, NotFound
from cairn.provenance.yw.model import Model, Program

__all__ = ["MAX_DEPTH", "DataNode", "View", "build_view"]

MAX_DEPTH = 100  # opened levels; drawing and walking recurse once per level


@dataclass
class DataNode:
    id: int  # the representative data id (the outermost one of its class)
    name: str
    qualified_name: str
    cluster: int | None  # the opened workflow drawn around it, None = top level
    is_param: bool = False
    data_ids: set[int] = field(default_factory=set)


@dataclass
class View:
    model: Model
    root: Program | None
    depth: int
    steps: list[int] = field(default_factory=list)
    clusters: dict[int, int | None] = field(default_factory=dict)  # opened workflow -> parent
    step_cluster: dict[int, int | None] = field(default_factory=dict)
    data: dict[int, DataNode] = field(default_factory=dict)
    reads: set[tuple[int, int]] = field(default_factory=set)  # (data node, step)
    writes: set[tuple[int, int]] = field(default_factory=set)  # (step, data node)
    inputs: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.root.name if self.root else "workflow"

    def find_data(self, name: str) -> list[int]:
        """Data nodes called ``name`` (or whose qualified name it is).

        Raises:
            NotFound: no data item of that name is shown.
        """
        found = [
            node.id
            for node in self.data.values()
            if name == node.name
            or any(self.model.data[d].qualified_name == name for d in node.data_ids)
        ]
        if not found:
            known = ", ".join(sorted({n.name for n in self.data.values()}))
            raise NotFound(f"no data item {name!r} in the workflow; known: {known}")
        return found


def build_view(model: Model, depth: int = 1) -> View:
    """The graph of ``model`` with workflows opened down to ``depth`` levels.

    Raises:
        Invalid: ``depth`` outside 1..MAX_DEPTH, or a model with no block at all.
    """
    if not 1 <= depth <= MAX_DEPTH:
        raise Invalid(f"--depth must be from 1 to {MAX_DEPTH}, not {depth}")
    if not model.programs:
        raise Invalid("no @begin block found: nothing to draw")
    top = model.top_level
    root = top[0] if len(top) == 1 and top[0].is_workflow else None
    view = View(model, root, depth)
    parent: dict[int, int] = {}  # union-find over data ids

    def find(d: int) -> int:
        while parent.get(d, d) != d:
            d = parent[d]
        return d

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            outer, inner = sorted((ra, rb), key=lambda d: (_level(model, d), d))
            parent[inner] = outer

    def open_workflow(program: Program) -> None:
        for port in (model.ports[i] for i in program.ports):
            inner = _data_in_scope(model, program.id, port.binding)
            if inner is not None:
                union(port.data_id, inner)

    def walk(children: list[int], level: int, cluster: int | None) -> None:
        for child_id in children:
            child = model.programs[child_id]
            if child.is_workflow and level < depth:
                view.clusters[child.id] = cluster
                open_workflow(child)
                walk(child.children, level + 1, child.id)
            else:
                view.steps.append(child.id)
                view.step_cluster[child.id] = cluster

    if root is not None:
        open_workflow(root)
        walk(root.children, 1, None)
    else:
        walk([p.id for p in top], 1, None)

    consumers: dict[int, list[str]] = {}
    for step_id in view.steps:
        for port in (model.ports[i] for i in model.programs[step_id].ports):
            node = _node(view, find(port.data_id))
            node.data_ids.add(port.data_id)
            if port.is_input:
                view.reads.add((node.id, step_id))
                consumers.setdefault(node.id, []).append(port.type)
            else:
                view.writes.add((step_id, node.id))
    for data_id in model.data:
        if find(data_id) in view.data:
            view.data[find(data_id)].data_ids.add(data_id)
    for node in view.data.values():
        node.is_param = bool(consumers.get(node.id)) and all(
            t == "param" for t in consumers[node.id]
        )
    produced = {d for _, d in view.writes}
    consumed = {d for d, _ in view.reads}
    if root is not None:
        for port in (model.ports[i] for i in root.ports):
            rep = find(port.data_id)
            if rep in view.data:
                (view.inputs if port.is_input else view.outputs).append(rep)
    else:
        view.inputs = sorted(consumed - produced)
        view.outputs = sorted(produced - consumed)
    return view


def _level(model: Model, data_id: int) -> int:
    scope = model.data[data_id].scope_id
    level = 0
    while scope is not None:
        level += 1
        scope = model.programs[scope].parent_id
    return level


def _data_in_scope(model: Model, scope: int, name: str) -> int | None:
    for data in model.data.values():
        if data.scope_id == scope and data.name == name:
            return data.id
    return None


def _node(view: View, rep: int) -> DataNode:
    if rep not in view.data:
        data = view.model.data[rep]
        cluster = data.scope_id if data.scope_id in view.clusters else None
        view.data[rep] = DataNode(rep, data.name, data.qualified_name, cluster)
    return view.data[rep]
