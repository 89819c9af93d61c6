"""Dispatcher conditions: a Python expression, checked when a process is saved and evaluated
(with simpleeval) before each dispatch; the dispatcher sends only when it is true.

The names are the manual's: ``inputs`` (how many data items the dispatcher is given),
``input_<n>_files``, ``input_<n>_file_<m>_name``, ``input_<n>_file_<m>_lines`` (n and m count
from 1) and ``dispatching_service_name``. Natural expressions work (string methods such as
``endswith``, ``len``, ``any``, ``all``, comparisons, comprehensions); imports, dunder and
private attributes, lambdas and huge powers or repetitions are refused, and evaluation is
bounded: the expression's length, every number and string it makes, the items its
comprehensions visit and the characters and items of all the values it makes have limits, and
lists may hold only plain values (no lists of lists).
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

import simpleeval

from cairn.errors import Invalid

__all__ = [
    "MAX_CONDITION_LENGTH",
    "ConditionError",
    "check_condition",
    "evaluate_condition",
]

MAX_CONDITION_LENGTH = 2_000
MAX_EXPONENT = 64
MAX_INT_BITS = 4_096
MAX_SEQUENCE = 10_000  # the longest string or list a condition may build
MAX_WORK = 1_000_000  # characters and items of all the values one evaluation makes

_NAME = re.compile(
    r"inputs|dispatching_service_name|input_[1-9]\d*_(files|file_[1-9]\d*_(name|lines))"
)
_STR_METHODS = frozenset(
    [
        "capitalize",
        "casefold",
        "count",
        "endswith",
        "find",
        "index",
        "isalnum",
        "isalpha",
        "isdigit",
        "islower",
        "isnumeric",
        "isspace",
        "isupper",
        "lower",
        "lstrip",
        "partition",
        "removeprefix",
        "removesuffix",
        "rfind",
        "rindex",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "title",
        "upper",
    ]
)
_LIST_METHODS = frozenset({"count", "index"})
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "len": len,
    "any": any,
    "all": all,
    "min": min,
    "max": max,
    "sum": sum,
    "abs": abs,
    "round": round,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "sorted": sorted,
}


class ConditionError(Invalid):
    """A condition that cannot be parsed, uses what conditions may not, or fails to evaluate."""

    code = "invalid-condition"


def _too_big(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return value.bit_length() > MAX_INT_BITS
    if isinstance(value, str | list | tuple | bytes):
        return len(value) > MAX_SEQUENCE
    return False


def _bounded(function: Callable[[Any, Any], Any], what: str) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        if function is operator.pow and isinstance(b, int | float) and abs(b) > MAX_EXPONENT:
            raise simpleeval.NumberTooHigh(f"exponents above {MAX_EXPONENT} are refused")
        if function is operator.mul:
            for seq, times in ((a, b), (b, a)):
                if (
                    isinstance(seq, str | list | tuple | bytes)
                    and isinstance(times, int)
                    and len(seq) * max(times, 0) > MAX_SEQUENCE
                ):
                    raise simpleeval.IterableTooLong(
                        f"repetitions longer than {MAX_SEQUENCE} are refused"
                    )
        if function in (operator.lshift, operator.rshift) and isinstance(b, int) and b > 64:
            raise simpleeval.NumberTooHigh("shifts above 64 are refused")
        result = function(a, b)
        if _too_big(result):
            raise simpleeval.NumberTooHigh(f"the {what} is too large")
        return result

    return apply


_OPERATORS: dict[type, Callable[..., Any]] = dict(simpleeval.DEFAULT_OPERATORS)
for _op, _fn, _what in (
    (ast.Pow, operator.pow, "power"),
    (ast.Mult, operator.mul, "product"),
    (ast.Add, operator.add, "sum"),
    (ast.LShift, operator.lshift, "shift"),
    (ast.RShift, operator.rshift, "shift"),
):
    _OPERATORS[_op] = _bounded(_fn, _what)


class _Evaluator(simpleeval.EvalWithCompoundTypes):  # type: ignore[misc]
    """simpleeval with a work budget: every value an expression makes is charged its length
    (strings, lists ...), containers may hold only plain values (no lists of lists, whose
    printing or comparing would cost the product of their sizes), and f-strings (whose format
    specs build strings before any check) are not available."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.nodes.pop(ast.JoinedStr, None)
        self.nodes.pop(ast.FormattedValue, None)
        self.spent = 0

    def _eval(self, node: ast.AST) -> Any:
        result = super()._eval(node)
        if isinstance(result, str | bytes | list | tuple | dict | set | frozenset):
            self.spent += len(result)
            if self.spent > MAX_WORK:
                raise simpleeval.IterableTooLong(
                    f"the condition handles more than {MAX_WORK} characters and items"
                )
            items = result.values() if isinstance(result, dict) else result
            if not isinstance(result, str | bytes) and not all(map(_plain, items)):
                raise simpleeval.FeatureNotAvailable("lists may hold only plain values")
        return result


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str | bytes)


def _only_plain(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``function`` refusing containers: ``str([...])`` or ``sum`` of lists would build their
    results in one C call, before the budget sees them."""

    def call(*args: Any, **kwargs: Any) -> Any:
        for given in (*args, *kwargs.values()):
            values = given if isinstance(given, list | tuple | set | frozenset) else [given]
            if name == "str" and not _plain(given):
                raise simpleeval.FeatureNotAvailable("str() takes a plain value")
            if name == "sum" and not all(isinstance(v, int | float) for v in values):
                raise simpleeval.FeatureNotAvailable("sum() adds numbers only")
        return function(*args, **kwargs)

    return call


def _evaluator(names: Callable[[ast.Name], Any]) -> simpleeval.EvalWithCompoundTypes:
    functions = dict(_FUNCTIONS)
    functions["str"] = _only_plain(str, "str")
    functions["sum"] = _only_plain(sum, "sum")
    return _Evaluator(
        operators=_OPERATORS,
        functions=functions,
        names=names,
        allowed_attrs={str: _STR_METHODS, list: _LIST_METHODS, tuple: _LIST_METHODS},
    )


# Nodes an expression may hold besides those the evaluator handles (contexts, operators).
_HELPERS = (ast.expr_context, ast.operator, ast.cmpop, ast.boolop, ast.unaryop, ast.comprehension)


def check_condition(text: str | None) -> ast.expr | None:
    """The parsed condition (None for none); ``ConditionError`` with the parser's message for
    one that cannot be parsed or uses what conditions may not."""
    if text is None or not text.strip():
        return None
    if len(text) > MAX_CONDITION_LENGTH:
        raise ConditionError(f"A condition has at most {MAX_CONDITION_LENGTH} characters.")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        where = f" (column {exc.offset})" if exc.offset else ""
        raise ConditionError(
            f"The condition is not a Python expression: {exc.msg}{where}."
        ) from None
    allowed = tuple(_evaluator(lambda node: None).nodes) + _HELPERS
    bound = {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    for node in ast.walk(tree.body):
        if not isinstance(node, allowed):
            raise ConditionError(
                f"The condition may not use {type(node).__name__} "
                "(no lambdas, f-strings, walrus or starred expressions)."
            )
        if isinstance(node, ast.Attribute) and (
            node.attr.startswith("_") or node.attr not in _STR_METHODS | _LIST_METHODS
        ):
            raise ConditionError(
                f"The condition may not use the attribute {node.attr!r}; only string methods "
                "such as endswith and lower."
            )
        if isinstance(node, ast.Name) and not (
            node.id in bound or node.id in _FUNCTIONS or _NAME.fullmatch(node.id)
        ):
            raise ConditionError(
                f"The condition names {node.id!r}, which is not one of inputs, input_<n>_files, "
                "input_<n>_file_<m>_name, input_<n>_file_<m>_lines, dispatching_service_name "
                f"or a function ({', '.join(sorted(_FUNCTIONS))})."
            )
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Attribute)
            or (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS)
        ):
            raise ConditionError("The condition may call only its functions and string methods.")
        if (
            isinstance(node, ast.BinOp)
            and isinstance(node.op, ast.Pow)
            and isinstance(node.right, ast.Constant)
            and isinstance(node.right.value, int | float)
            and abs(node.right.value) > MAX_EXPONENT
        ):
            raise ConditionError(f"The condition's exponents are at most {MAX_EXPONENT}.")
    return tree.body


def evaluate_condition(text: str | None, names: Mapping[str, Callable[[], Any]]) -> bool:
    """Whether the condition holds (no condition: true). ``names`` maps each name the
    condition may use to a function giving its value (so file lines are counted only when
    asked for); ``ConditionError`` when it cannot be evaluated."""
    parsed = check_condition(text)
    if parsed is None:
        return True
    assert text is not None

    def lookup(node: ast.Name) -> Any:
        if node.id in names:
            return names[node.id]()
        raise simpleeval.NameNotDefined(node.id, text)

    try:
        return bool(_evaluator(lookup).eval(text, previously_parsed=parsed))
    except ConditionError:
        raise
    except simpleeval.NameNotDefined as exc:
        raise ConditionError(
            f"The condition names {exc.name!r}, which this execution does not have."
        ) from None
    except (simpleeval.InvalidExpression, ArithmeticError, ValueError, TypeError) as exc:
        raise ConditionError(f"The condition failed: {type(exc).__name__}: {exc}") from None
    except (IndexError, KeyError, RecursionError) as exc:
        raise ConditionError(f"The condition failed: {type(exc).__name__}: {exc}") from None
