"""YesWorkflow 0.2 Prolog facts: the names, arities and layout YW itself writes.

Each section starts with a blank line and a ``% FACT: name(args).`` header, even when it holds
no fact, so YW's published query rules (yw_views.P and friends) run on cairn's files. Strings
are single-quoted Prolog atoms; a missing value is ``nil``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from cairn.errors import Invalid
from cairn.provenance.yw.model import Model

__all__ = [
    "EXTRACT_FACTS",
    "MODEL_FACTS",
    "Fact",
    "atom",
    "extract_facts",
    "model_facts",
    "render_facts",
    "write_facts",
]

Fact = tuple[int | str | None, ...]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

EXTRACT_FACTS = "yw_extract_facts.P"
MODEL_FACTS = "yw_model_facts.P"


def atom(value: int | str | None) -> str:
    """A Prolog term for ``value``: integers bare, strings single-quoted and escaped."""
    if value is None:
        return "nil"
    if isinstance(value, int):
        return str(value)
    escaped = (
        value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\t", "\\t")
    )
    # other control characters as ISO Prolog's \xHH\ escapes
    return "'" + _CONTROL.sub(lambda m: f"\\x{ord(m.group()):x}\\", escaped) + "'"


def render_facts(sections: Iterable[tuple[str, Sequence[Fact]]]) -> str:
    """Sections of ``(header, rows)``; the header is ``name(arg, ...)`` as YW prints it."""
    out: list[str] = []
    for header, rows in sections:
        name = header.split("(", 1)[0]
        out.append("")
        out.append(f"% FACT: {header}.")
        out.extend(f"{name}({', '.join(atom(v) for v in row)})." for row in rows)
    return "\n".join(out) + "\n"


def extract_facts(model: Model) -> str:
    """``yw_extract_facts.P``: sources, annotations and which qualifies which."""
    ex = model.extraction
    return render_facts(
        [
            ("extract_source(source_id, source_path)", [(s.id, s.path) for s in ex.sources]),
            (
                "annotation(annotation_id, source_id, line_number, tag, keyword, value)",
                [(a.id, a.source_id, a.line, a.tag, a.keyword, a.value) for a in ex.annotations],
            ),
            (
                "annotation_qualifies(qualifying_annotation_id, primary_annotation_id)",
                [(a.id, a.qualifies) for a in ex.annotations if a.qualifies is not None],
            ),
        ]
    )


def model_facts(model: Model) -> str:
    """``yw_model_facts.P``: programs, ports, data, channels, URI and log templates."""
    programs = list(model.programs.values())
    ports = list(model.ports.values())
    return render_facts(
        [
            (
                "program(program_id, program_name, qualified_program_name, "
                "begin_annotation_id, end_annotation_id)",
                [(p.id, p.name, p.qualified_name, p.begin_id, p.end_id) for p in programs],
            ),
            ("workflow(program_id)", [(p.id,) for p in programs if p.is_workflow]),
            ("function(program_id)", [(p.id,) for p in programs if p.is_function]),
            (
                "has_subprogram(program_id, subprogram_id)",
                [(p.id, c) for p in programs for c in p.children],
            ),
            (
                "port(port_id, port_type, port_name, qualified_port_name, "
                "port_annotation_id, data_id)",
                [
                    (p.id, p.type, p.name, p.qualified_name, p.annotation_id, p.data_id)
                    for p in ports
                ],
            ),
            ("port_alias(port_id, alias)", [(p.id, p.alias) for p in ports if p.alias]),
            ("port_uri_template(port_id, uri)", [(p.id, p.uri) for p in ports if p.uri]),
            (
                "has_in_port(block_id, port_id)",
                [(p.program_id, p.id) for p in ports if p.is_input],
            ),
            (
                "has_out_port(block_id, port_id)",
                [(p.program_id, p.id) for p in ports if not p.is_input],
            ),
            (
                "data(data_id, data_name, qualified_data_name)",
                [(d.id, d.name, d.qualified_name) for d in model.data.values()],
            ),
            ("channel(channel_id, data_id)", [(c.id, c.data_id) for c in model.channels]),
            (
                "port_connects_to_channel(port_id, channel_id)",
                [(p, c.id) for c in model.channels for p in c.ports],
            ),
            (
                "inflow_connects_to_channel(port_id, channel_id)",
                [(c.inflow, c.id) for c in model.channels if c.inflow is not None],
            ),
            (
                "outflow_connects_to_channel(port_id, channel_id)",
                [(c.outflow, c.id) for c in model.channels if c.outflow is not None],
            ),
            (
                "uri_variable(uri_variable_id, variable_name, port_id)",
                [(v.id, v.name, v.port_id) for v in model.uri_variables],
            ),
            (
                "log_template(log_template_id, port_id, entry_template, log_annotation_id)",
                [(t.id, t.port_id, t.template, t.annotation_id) for t in model.log_templates],
            ),
            (
                "log_template_variable(log_variable_id, variable_name, log_template_id)",
                [(vid, name, t.id) for t in model.log_templates for vid, name in t.variables],
            ),
        ]
    )


def write_facts(model: Model, directory: str | Path) -> list[Path]:
    """Write both fact files into ``directory`` (created if missing); returns their paths.

    Raises:
        Invalid: ``directory`` is a file or cannot be created.
    """
    folder = Path(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise Invalid(f"{folder}: not a directory") from exc
    except OSError as exc:
        raise Invalid(f"{folder}: cannot create: {exc.strerror or exc}") from exc
    written = []
    for name, text in ((EXTRACT_FACTS, extract_facts(model)), (MODEL_FACTS, model_facts(model))):
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
