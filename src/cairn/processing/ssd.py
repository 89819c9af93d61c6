"""Service descriptions (SSDs): what a service takes, what it costs, and the components it runs.

A service is Python code: a plugin returns ``Service`` objects from the ``register_services``
hook (see docs/services.md). ``ssd_id`` is stable across versions; ``id`` names one version.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cairn.errors import Invalid

__all__ = [
    "CONDITION",
    "DATA_TYPES",
    "DEFAULT_DATETIME_FORMAT",
    "FILE_TYPES",
    "ComponentSpec",
    "Dispatcher",
    "InputSpec",
    "OptionSpec",
    "Service",
    "evaluate_price",
    "parse_option",
]

FILE_TYPES = (
    "GeoTIFF",
    "JPEG2000",
    "DEM",
    "GeoJSON",
    "KML",
    "KMZ",
    "CSV",
    "ESRI Shapefile",
    "JPEG",
    "PNG",
    "PDF",
    "GZIP",
    "ZIP",
    "Other",
)
DEFAULT_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S"  # a datetime option's without its own format=
DATA_TYPES = ("numeric", "currency", "boolean", "datetime", "string", "constrained")

# What an input of one type also accepts (the SDK checks the same on its side).
ACCEPTS: Mapping[str, tuple[str, ...]] = {
    "GeoJSON": ("GeoJSON", "KML", "KMZ", "ESRI Shapefile"),
    "GeoTIFF": ("GeoTIFF", "DEM", "JPEG2000"),
    "DEM": ("DEM", "GeoTIFF"),
}


@dataclass(frozen=True)
class InputSpec:
    """One input: a data item of ``file_type`` (or one it accepts)."""

    number: int
    file_type: str
    title: str
    description: str = ""

    def accepts(self, file_type: str) -> bool:
        return file_type in ACCEPTS.get(self.file_type, (self.file_type,))


@dataclass(frozen=True)
class OptionSpec:
    """One option. ``validation``: ``values=a,b;names=A,B`` (constrained), ``format=%Y-%m-%d``
    (datetime, required by the SDK), ``min=0;max=10`` (numeric)."""

    name: str
    data_type: str
    default: str | None = None
    required: bool = True
    nullable: bool = False
    validation: str | None = None
    title: str = ""
    description: str = ""
    advanced: bool = False

    def constraints(self) -> dict[str, str]:
        return dict(
            part.split("=", 1) for part in (self.validation or "").split(";") if "=" in part
        )


@dataclass(frozen=True)
class ComponentSpec:
    """One step of the chain: ``function`` is ``module:name``, run in a worker process."""

    name: str
    function: str
    cpu: int = 1
    memory: int = 512 * 1024 * 1024


@dataclass(frozen=True)
class Service:
    """A service description: identity, documentation, inputs, options, chain and price."""

    id: str
    ssd_id: str
    version: int
    name: str
    keywords: Sequence[str]
    categories: Sequence[str]
    summary: str
    description: str
    inputs: Sequence[InputSpec]
    options: Sequence[OptionSpec]
    components: Sequence[ComponentSpec]
    price: str = "1"  # an arithmetic expression over the option values and ``inputs``
    outputs: Sequence[str] = ()
    assumptions: str = ""
    performance: str = ""
    maximum_area_km2: float | None = None
    aggregator: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime(2026, 12, 1).astimezone())
    show_in_latest: bool = True
    # Called in the server when an execution starts, with its database session: what it
    # returns joins the options the components see (Elevation's registered DEM sources).
    context: Callable[[Any], Mapping[str, Any]] | None = None

    def option(self, name: str) -> OptionSpec | None:
        return next((o for o in self.options if o.name == name), None)


# Every dispatcher has it (the manual: "checked prior to dispatch"): cairn.processing._conditions
# checks it when a process is saved and evaluates it (simpleeval) before each dispatch.
CONDITION = OptionSpec(
    "condition",
    "string",
    required=False,
    nullable=True,
    title="Condition",
    description="A Python expression over inputs, input_n_files, input_n_file_m_name, "
    "input_n_file_m_lines and dispatching_service_name; the dispatcher sends only when it "
    "is true.",
)


@dataclass(frozen=True)
class Dispatcher(Service):
    """A dispatcher service: after an execution succeeds, ``dispatch`` (called in the server
    with a ``cairn.processing.DispatchContext``) sends its outputs somewhere; ``check`` (given
    the typed options) raises ``Invalid`` for bad options when a process is saved. As in the
    Fusion Platform, a dispatcher is a service that processes add, not one they run."""

    inputs: Sequence[InputSpec] = ()
    options: Sequence[OptionSpec] = ()
    components: Sequence[ComponentSpec] = ()
    price: str = "0"
    dispatch: Callable[[Any], None] | None = None
    check: Callable[[Mapping[str, Any]], None] | None = None

    def __post_init__(self) -> None:
        if self.option(CONDITION.name) is None:
            object.__setattr__(self, "options", (*self.options, CONDITION))


_DATE_DIRECTIVES = re.compile(r"%[a-zA-Z]")


def parse_option(spec: OptionSpec, value: Any) -> Any:
    """The typed value of option ``spec`` from its text (or JSON) form; ``Invalid`` if not."""
    if value is None or value == "":
        if spec.nullable or not spec.required:
            return None
        raise Invalid(f"Option '{spec.name}' is required.")
    text = value if isinstance(value, str) else str(value)
    kind = spec.data_type
    rules = spec.constraints()
    try:
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError
            return lowered in ("true", "1")
        if kind in ("numeric", "currency"):
            number = float(text)
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError
            if "min" in rules and number < float(rules["min"]):
                raise Invalid(f"Option '{spec.name}' must be at least {rules['min']}.")
            if "max" in rules and number > float(rules["max"]):
                raise Invalid(f"Option '{spec.name}' must be at most {rules['max']}.")
            return number
        if kind == "datetime":
            fmt = rules.get("format", DEFAULT_DATETIME_FORMAT)
            for candidate in (fmt, "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"):
                try:
                    return datetime.strptime(text.strip(), candidate)
                except ValueError:
                    continue
            try:
                return datetime.fromisoformat(text.strip())
            except ValueError:
                raise ValueError from None
        if kind == "constrained":
            allowed = rules.get("values", "").split(",")
            if text not in allowed:
                raise Invalid(
                    f"Option '{spec.name}' must be one of {', '.join(allowed)}; got {text!r}."
                )
            return text
        return text
    except ValueError:
        raise Invalid(f"Option '{spec.name}' must be a {kind} value; got {text[:100]!r}.") from None


# --- price expressions -------------------------------------------------------------------------

_OPERATORS: Mapping[type[ast.AST], Callable[..., Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.USub: operator.neg,
}


def evaluate_price(expression: str, names: Mapping[str, float]) -> int:
    """Credits for ``expression`` (numbers, + - * /, ``max``/``min`` and option names), rounded
    up; a tiny evaluator, so a service's price can never run code."""

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name) and node.id in names:
            return float(names[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return float(_OPERATORS[type(node.op)](walk(node.left), walk(node.right)))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
            return float(_OPERATORS[type(node.op)](walk(node.operand)))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("max", "min")
        ):
            values = [walk(arg) for arg in node.args]
            return float(max(values) if node.func.id == "max" else min(values))
        raise Invalid(f"Price expression {expression!r} is not supported.")

    try:
        value = walk(ast.parse(expression, mode="eval"))
    except (SyntaxError, ZeroDivisionError) as exc:
        raise Invalid(f"Price expression {expression!r} failed: {exc}.") from exc
    return max(0, int(-(-value // 1)))
