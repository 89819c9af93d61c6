"""Dispatcher conditions (issue #16): natural expressions hold or not over the manual's names,
escapes and unbounded work are refused, and a bad condition is refused when a process is
created or updated, with the parser's message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import simpleeval
from fastapi.testclient import TestClient

from cairn.blobs import BlobStore
from cairn.processing._conditions import (
    ConditionError,
    _evaluator,
    check_condition,
    evaluate_condition,
)
from cairn.processing._context import DispatchedFile
from cairn.processing._dispatch import condition_names
from tests.factories import Member
from tests.processing.fusion_helpers import STATISTICS, create_process, org_path, upload_data

NAMES: dict[str, Callable[[], Any]] = {
    "inputs": lambda: 2,
    "dispatching_service_name": lambda: "Elevation",
    "input_1_files": lambda: 2,
    "input_1_file_1_name": lambda: "elevation.tif",
    "input_1_file_1_lines": lambda: 0,
    "input_1_file_2_name": lambda: "statistics.csv",
    "input_1_file_2_lines": lambda: 3,
    "input_2_files": lambda: 0,
}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (None, True),
        ("", True),
        ('input_1_files > 0 and dispatching_service_name == "Elevation"', True),
        ('input_1_files > 0 and dispatching_service_name == "Region statistics"', False),
        ("input_1_file_1_name.endswith('.tif')", True),
        ("input_1_file_2_name.lower().startswith('elev')", False),
        ("len(input_1_file_2_name) == 14", True),
        ("any(n.endswith('.csv') for n in [input_1_file_1_name, input_1_file_2_name])", True),
        ("all([input_1_files, input_2_files])", False),
        ("input_1_file_2_lines >= 3 and inputs == 2", True),
        ("2 ** 10 > 1000 and 'tif' in input_1_file_1_name", True),
        ("input_2_files == 0 if inputs > 1 else False", True),
    ],
)
def test_natural_conditions(condition: str | None, expected: bool) -> None:
    assert evaluate_condition(condition, NAMES) is expected


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("__import__('os')", "may call only its functions"),
        ("__import__('os').system('true')", "attribute 'system'"),
        ("().__class__.__bases__[0].__subclasses__()", "attribute '__"),
        ("input_1_file_1_name.__class__", "attribute '__class__'"),
        ("input_1_file_1_name._private", "attribute '_private'"),
        ("input_1_file_1_name.format_map", "attribute 'format_map'"),
        ("inputs.real.__class__", "attribute"),
        ("(lambda: 1)()", "may call only"),
        ("[lambda: 1]", "Lambda"),
        ("(x := 1)", "NamedExpr"),
        ('len(f"{inputs:>1000000000}") > 0', "JoinedStr"),
        ("9 ** 99999999", "exponents are at most 64"),
        ("import os", "not a Python expression: invalid syntax"),
        ("inputs = 1", "not a Python expression"),
        ("inputs >", "not a Python expression"),
        ("open('/etc/passwd')", "may call only its functions"),
        ("_secret > 1", "names '_secret'"),
        ("input_0_files > 0", "names 'input_0_files'"),
        ("x" * 2_001, "at most 2000 characters"),
    ],
)
def test_escapes_are_refused_when_checked(condition: str, message: str) -> None:
    with pytest.raises(ConditionError) as refused:
        check_condition(condition)
    assert message in refused.value.message


@pytest.mark.parametrize(
    "condition",
    ["().__class__", "input_1_file_1_name.__class__", "'a'.format_map({})", "(lambda: 1)()"],
)
def test_the_evaluator_refuses_escapes_without_the_check_too(condition: str) -> None:
    """Defence in depth: simpleeval, as cairn configures it, refuses them on its own."""
    evaluator = _evaluator(lambda node: NAMES[node.id]())
    with pytest.raises(simpleeval.InvalidExpression):
        evaluator.eval(condition)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("input_1_file_1_name * 10 ** 8", "repetitions longer than 10000"),
        ("[input_1_file_1_name] * 100_000", "repetitions longer than 10000"),
        ("2 ** (inputs * 100)", "exponents above 64"),
        ("(10 ** 60) ** 60 > 0", "too large"),
        ("len([c for c in str(10**60) for d in str(10**60) for e in str(10**60)]) > 0", "many"),
        ("input_9_files > 0", "names 'input_9_files', which this execution does not have"),
        ("sum([[1]] * 5000, []) == []", "lists may hold only plain values"),
        ("len(str([[1] * 10000] * 10000)) > 0", "lists may hold only plain values"),
        ("sum(['a', 'b']) == 'ab'", "sum() adds numbers only"),
        ("{'a': [1] * 10000} == {}", "lists may hold only plain values"),
        ("len([[1] * 10000 for x in 'a' * 10000]) > 0", "more than 1000000 characters"),
        ("len([s + 'a' for s in ['x' * 9000] * 100]) > 0", "more than 1000000 characters"),
        ("int('x') > 0", "ValueError"),
        ("inputs / 0 > 1", "ZeroDivisionError"),
    ],
)
def test_unbounded_or_failing_evaluation_is_an_error(condition: str, message: str) -> None:
    check_condition(condition)  # it parses: only evaluating shows the problem
    with pytest.raises(ConditionError) as refused:
        evaluate_condition(condition, NAMES)
    assert message in refused.value.message


def test_names_count_data_items_files_and_lines(blobs: BlobStore) -> None:
    three = blobs.put(b"a\nb\nc").sha256
    two = blobs.put(b"x\ny\n").sha256
    files = [
        DispatchedFile("First", 0, "Raster", "a.tif", "GeoTIFF", three, "f1", 5),
        DispatchedFile("First", 0, "Raster", "b.csv", "CSV", two, "f2", 4),
        DispatchedFile("Second", 1, "Table", "t.csv", "CSV", two, "f3", 4),
    ]
    names = condition_names(blobs, files, "Elevation")
    assert evaluate_condition("inputs == 2 and input_1_files == 2 and input_2_files == 1", names)
    assert evaluate_condition("input_1_file_1_lines == 3 and input_1_file_2_lines == 2", names)
    assert evaluate_condition("input_2_file_1_name == 't.csv'", names)


def _dispatchers(condition: str) -> list[dict[str, Any]]:
    return [{"name": "Local folder", "options": [{"name": "condition", "value": condition}]}]


def test_a_bad_condition_is_refused_at_create_and_update_with_the_parsers_message(
    client: TestClient, make_member: Callable[..., Member]
) -> None:
    member = make_member(credits=5)
    data_id = upload_data(client, member)
    template = client.get(
        f"{org_path(member)}/processes/new",
        params={"service_id": STATISTICS},
        headers=member.headers,
    ).json()["model"]
    body = {f"Process[{k}]": v for k, v in template.items() if v is not None}
    body["Process[name]"] = "Conditional"
    body["Process[inputs]"] = [{**i, "id": data_id} for i in template["inputs"]]
    body["Process[dispatchers]"] = _dispatchers("inputs >")
    refused = client.post(f"{org_path(member)}/processes", headers=member.headers, json=body)
    assert refused.status_code == 422, refused.text
    assert (
        "Dispatcher 'Local folder': The condition is not a Python expression: invalid syntax"
        in refused.text
    )
    listed = client.get(f"{org_path(member)}/processes", headers=member.headers).json()["list"]
    assert listed == []  # nothing was kept

    process = create_process(client, member, data_id)
    answer = client.patch(
        f"{org_path(member)}/processes/{process['id']}",
        headers=member.headers,
        json={"Process[dispatchers]": _dispatchers("().__class__")},
    )
    assert answer.status_code == 422, answer.text
    assert "attribute '__class__'" in answer.text
    kept = client.get(f"{org_path(member)}/processes/{process['id']}", headers=member.headers)
    assert kept.json()["model"]["dispatchers"] == []
