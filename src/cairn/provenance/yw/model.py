"""The workflow model built from annotations: programs, ports, data, channels.

Scopes follow YesWorkflow: a program's ports bind data in its *parent's* scope, so a top-level
workflow's ports bind ``[name]`` and its steps' ports bind ``workflow[name]``. Channels join,
within one scope, the out-ports producing a data item to the in-ports reading it; a workflow's
in-port feeds its children through inflow channels and a child feeds the workflow's out-port
through an outflow channel. Several top-level blocks side by side are steps of the file's own
scope and are connected the same way (YesWorkflow 0.2 would call all but the first functions;
the seed paper's OHIBC listing needs them connected).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from cairn.provenance.yw.annotations import (
    PORT_TAGS,
    Annotation,
    AnnotationError,
    Extraction,
    extract_files,
)
from cairn.provenance.yw.templates import LogTemplate, UriTemplate

__all__ = [
    "Channel",
    "Data",
    "LogTemplateDef",
    "Model",
    "Port",
    "Program",
    "UriVariable",
    "build_model",
    "load_model",
]

IN_TYPES = frozenset({"in", "param"})
OUT_TYPES = frozenset({"out", "return"})


@dataclass
class Port:
    id: int
    type: str  # in | param | out | return
    name: str
    program_id: int
    annotation_id: int
    qualified_name: str = ""
    alias: str | None = None
    uri: str | None = None
    desc: str | None = None
    data_id: int = 0

    @property
    def binding(self) -> str:
        """The data name the port reads or writes: its alias if given, else its name."""
        return self.alias or self.name

    @property
    def is_input(self) -> bool:
        return self.type in IN_TYPES

    @property
    def template(self) -> UriTemplate | None:
        return _template(self.uri) if self.uri else None


@lru_cache(maxsize=4096)
def _template(uri: str) -> UriTemplate:
    return UriTemplate(uri)


@dataclass
class Program:
    id: int
    name: str
    qualified_name: str
    begin_id: int
    end_id: int
    source_id: int
    parent_id: int | None
    children: list[int] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    desc: str | None = None
    is_function: bool = False

    @property
    def is_workflow(self) -> bool:
        return bool(self.children)


@dataclass
class Data:
    id: int
    name: str
    qualified_name: str
    scope_id: int | None  # the workflow whose scope holds it; None = the file level


@dataclass
class Channel:
    id: int
    data_id: int
    ports: list[int]  # child ports joined (port_connects_to_channel)
    inflow: int | None = None  # the scope workflow's in-port feeding it
    outflow: int | None = None  # the scope workflow's out-port it feeds


@dataclass
class UriVariable:
    id: int
    name: str
    port_id: int


@dataclass
class LogTemplateDef:
    id: int
    port_id: int
    template: str
    annotation_id: int
    variables: list[tuple[int, str]] = field(default_factory=list)

    @property
    def compiled(self) -> LogTemplate:
        return LogTemplate(self.template)


@dataclass
class Model:
    """Everything ``cairn yw`` knows about a set of annotated sources."""

    extraction: Extraction
    programs: dict[int, Program] = field(default_factory=dict)
    ports: dict[int, Port] = field(default_factory=dict)
    data: dict[int, Data] = field(default_factory=dict)
    channels: list[Channel] = field(default_factory=list)
    uri_variables: list[UriVariable] = field(default_factory=list)
    log_templates: list[LogTemplateDef] = field(default_factory=list)

    @property
    def top_level(self) -> list[Program]:
        return [p for p in self.programs.values() if p.parent_id is None]

    def program_ports(self, program: Program, types: frozenset[str]) -> list[Port]:
        return [self.ports[i] for i in program.ports if self.ports[i].type in types]

    def to_dict(self) -> dict[str, Any]:
        """The model as one JSON document (``--json``); line numbers stay in the facts."""
        return {
            "sources": [{"id": s.id, "path": s.path} for s in self.extraction.sources],
            "programs": [
                {
                    "id": p.id,
                    "name": p.name,
                    "qualified_name": p.qualified_name,
                    "kind": "workflow"
                    if p.is_workflow
                    else "function"
                    if p.is_function
                    else "step",
                    "parent": p.parent_id,
                    "children": p.children,
                    "in_ports": [i for i in p.ports if self.ports[i].is_input],
                    "out_ports": [i for i in p.ports if not self.ports[i].is_input],
                    "calls": p.calls,
                    "desc": p.desc,
                }
                for p in self.programs.values()
            ],
            "ports": [
                {
                    "id": port.id,
                    "type": port.type,
                    "name": port.name,
                    "qualified_name": port.qualified_name,
                    "alias": port.alias,
                    "uri_template": port.uri,
                    "uri_variables": port.template.variables if port.template else [],
                    "desc": port.desc,
                    "program": port.program_id,
                    "data": port.data_id,
                }
                for port in self.ports.values()
            ],
            "data": [
                {"id": d.id, "name": d.name, "qualified_name": d.qualified_name}
                for d in self.data.values()
            ],
            "channels": [
                {
                    "id": c.id,
                    "data": c.data_id,
                    "ports": c.ports,
                    "inflow": c.inflow,
                    "outflow": c.outflow,
                }
                for c in self.channels
            ],
            "log_templates": [
                {
                    "id": t.id,
                    "port": t.port_id,
                    "template": t.template,
                    "variables": [name for _, name in t.variables],
                }
                for t in self.log_templates
            ],
        }


def load_model(paths: Sequence[str | Path], *, language: str | None = None) -> Model:
    """Scan ``paths`` and build their workflow model (see :func:`build_model`)."""
    return build_model(extract_files(paths, language=language))


def build_model(extraction: Extraction) -> Model:
    """Programs, ports, data and channels from annotations.

    Raises:
        AnnotationError: unbalanced ``@begin``/``@end``, ports outside a block, a port or block
            declared twice, a qualifier given twice (every problem in ``detail``).
    """
    model = Model(extraction)
    errors: list[str] = []
    _build_programs(model, errors)
    if errors:
        raise AnnotationError(
            errors[0] if len(errors) == 1 else f"{len(errors)} YesWorkflow annotation errors",
            detail=errors if len(errors) > 1 else None,
        )
    _bind_data(model)
    _connect(model)
    return model


def _build_programs(model: Model, errors: list[str]) -> None:
    extraction = model.extraction
    stack: list[tuple[Program, Annotation]] = []
    current_port: Port | None = None
    names: set[str] = set()
    source_id = 0

    def close_open_blocks() -> None:
        for program, begin in stack:
            errors.append(f"{extraction.where(begin)}: @begin {program.name} has no @end")
        stack.clear()

    for ann in extraction.annotations:
        where = extraction.where(ann)
        if ann.source_id != source_id:
            close_open_blocks()  # a block never spans two files
            source_id = ann.source_id
        if ann.tag == "begin":
            assert ann.value is not None
            parent = stack[-1][0] if stack else None
            qualified = f"{parent.qualified_name}.{ann.value}" if parent else ann.value
            if qualified in names:
                errors.append(f"{where}: block {qualified} is declared twice")
            names.add(qualified)
            program = Program(
                id=len(model.programs) + 1,
                name=ann.value,
                qualified_name=qualified,
                begin_id=ann.id,
                end_id=0,
                source_id=ann.source_id,
                parent_id=parent.id if parent else None,
            )
            model.programs[program.id] = program
            if parent:
                parent.children.append(program.id)
            stack.append((program, ann))
            current_port = None
        elif ann.tag == "end":
            if not stack:
                errors.append(f"{where}: @end {ann.value or ''} without an open @begin".strip())
                continue
            program, begin = stack[-1]
            if ann.value and ann.value != program.name:
                errors.append(
                    f"{where}: @end {ann.value} does not close @begin {program.name} "
                    f"(line {begin.line})"
                )
            stack.pop()
            program.end_id = ann.id
            current_port = None
        elif ann.tag in PORT_TAGS:
            if not stack:
                errors.append(f"{where}: {ann.keyword} {ann.value} is outside any @begin block")
                current_port = None
                continue
            program = stack[-1][0]
            assert ann.value is not None
            port = Port(
                id=len(model.ports) + 1,
                type=ann.tag,
                name=ann.value,
                program_id=program.id,
                annotation_id=ann.id,
            )
            arrow = "<-" if port.is_input else "->"
            port.qualified_name = f"{program.qualified_name}{arrow}{port.name}"
            if any(
                model.ports[i].name == port.name and model.ports[i].is_input == port.is_input
                for i in program.ports
            ):
                errors.append(
                    f"{where}: {ann.keyword} {port.name} is declared twice in {program.name}"
                )
            model.ports[port.id] = port
            program.ports.append(port.id)
            program.is_function = program.is_function or port.type == "return"
            current_port = port
        elif ann.tag == "call":
            if not stack:
                errors.append(f"{where}: @call {ann.value} is outside any @begin block")
                continue
            assert ann.value is not None
            stack[-1][0].calls.append(ann.value)
        else:
            _qualify(model, ann, stack[-1][0] if stack else None, current_port, where, errors)
    close_open_blocks()


def _qualify(
    model: Model,
    ann: Annotation,
    program: Program | None,
    port: Port | None,
    where: str,
    errors: list[str],
) -> None:
    """Apply a qualifier the parser already placed after a suitable primary annotation."""
    assert ann.value is not None
    if ann.tag == "desc":
        if port is not None:
            port.desc = ann.value
        elif program is not None:
            program.desc = ann.value
        return
    if port is None:
        return  # its primary was misplaced, which is reported already
    if ann.tag == "as":
        if port.alias is not None:
            errors.append(f"{where}: {port.name} has two @as aliases")
        port.alias = ann.value
    elif ann.tag in ("uri", "file"):
        if port.uri is not None:
            errors.append(f"{where}: {port.name} has two URI templates")
        value = ann.value
        if ann.tag == "file" and UriTemplate(value).scheme is None:
            value = f"file:{value}"
        port.uri = value
    elif ann.tag == "log":
        template = LogTemplateDef(
            id=len(model.log_templates) + 1,
            port_id=port.id,
            template=ann.value,
            annotation_id=ann.id,
        )
        model.log_templates.append(template)


def _bind_data(model: Model) -> None:
    by_scope: dict[tuple[int | None, str], int] = {}
    for port in model.ports.values():
        program = model.programs[port.program_id]
        scope = program.parent_id
        key = (scope, port.binding)
        if key not in by_scope:
            prefix = model.programs[scope].qualified_name if scope else ""
            data = Data(len(model.data) + 1, port.binding, f"{prefix}[{port.binding}]", scope)
            model.data[data.id] = data
            by_scope[key] = data.id
        port.data_id = by_scope[key]
    variable_id = 0
    for port in model.ports.values():
        if port.template:
            for name in port.template.variables:
                variable_id += 1
                model.uri_variables.append(UriVariable(variable_id, name, port.id))
    variable_id = 0
    for template in model.log_templates:
        for name in template.compiled.variables:
            variable_id += 1
            template.variables.append((variable_id, name))


def _connect(model: Model) -> None:
    """Channels per data item of each scope, in data-id order."""
    members_of: dict[int, list[Port]] = {}
    for port in model.ports.values():
        members_of.setdefault(port.data_id, []).append(port)  # its data is in its parent's scope
    for data in model.data.values():
        members = members_of.get(data.id, [])
        sources: list[tuple[int | None, int | None]] = [
            (p.id, None) for p in members if not p.is_input
        ]
        sinks: list[tuple[int | None, int | None]] = [(p.id, None) for p in members if p.is_input]
        if data.scope_id is not None:
            scope = model.programs[data.scope_id]
            for port in (model.ports[i] for i in scope.ports):
                if port.binding == data.name:
                    (sources if port.is_input else sinks).append((None, port.id))
        pairs = (
            [(a, b) for a in sources for b in sinks]
            or [(a, (None, None)) for a in sources]
            or [((None, None), b) for b in sinks]
        )
        for (src, inflow), (dst, outflow) in pairs:
            channel = Channel(
                id=len(model.channels) + 1,
                data_id=data.id,
                ports=[p for p in (src, dst) if p is not None],
                inflow=inflow,
                outflow=outflow,
            )
            model.channels.append(channel)
