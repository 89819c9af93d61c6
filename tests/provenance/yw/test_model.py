"""The workflow model: programs, ports with aliases and templates, data scopes and channels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cairn.cli.main import app
from cairn.provenance.yw import AnnotationError, Model, build_model, extract_text, load_model

from .conftest import squeezed

runner = CliRunner()


def model_of(text: str, path: str = "s.py") -> Model:
    return build_model(extract_text(text, path=path))


def channel_ends(model: Model, data_name: str) -> list[tuple[list[str], str | None, str | None]]:
    """(ports joined, inflow, outflow) of each channel carrying a data item of that name."""
    ends = []
    for channel in model.channels:
        if model.data[channel.data_id].name != data_name:
            continue
        ends.append(
            (
                [model.ports[p].qualified_name for p in channel.ports],
                model.ports[channel.inflow].qualified_name if channel.inflow else None,
                model.ports[channel.outflow].qualified_name if channel.outflow else None,
            )
        )
    return ends


def test_ohibc_blocks_are_connected_by_status_df_data(fixtures: Path) -> None:
    model = load_model([fixtures / "ohibc_listing2.R"])
    first, second = model.top_level
    assert first.name == "output_estimate_status_file_by_region_since_1980"
    assert second.name == "write_status_to_csv_file"
    assert channel_ends(model, "status_df_data") == [
        (
            [
                "output_estimate_status_file_by_region_since_1980->status_df_data",
                "write_status_to_csv_file<-status_df_data",
            ],
            None,
            None,
        )
    ]
    params = [p.name for p in model.ports.values() if p.type == "param"]
    assert params == ["year_span", "dir_goal"]
    uri = {p.name: p.template.variables for p in model.ports.values() if p.template}
    assert uri == {"area_protected_total_file": ["dir_goal"], "lsp_status_file": ["dir_goal"]}


def test_c3c4_alias_binds_the_data(fixtures: Path) -> None:
    model = load_model([fixtures / "c3c4_listing1.m"])
    out = model.ports[2]
    assert (out.name, out.alias, out.binding) == ("Rain", "Rain_Matrix", "Rain_Matrix")
    assert model.data[out.data_id].qualified_name == "[Rain_Matrix]"
    assert model.ports[1].template is not None
    assert model.ports[1].template.variables == ["start_year", "end_year", "month"]


def test_nested_workflow_scopes_inflows_and_outflows(fixtures: Path) -> None:
    model = load_model([fixtures / "station_means.py"])
    by_name = {p.qualified_name: p for p in model.programs.values()}
    assert by_name["station_means"].is_workflow and by_name["station_means.clean"].is_workflow
    assert not by_name["station_means.read_records"].is_workflow
    names = {d.qualified_name for d in model.data.values()}
    assert {
        "[raw_records]",
        "station_means[raw_records]",
        "station_means.clean[no_blanks]",
    } <= names
    assert channel_ends(model, "records") == [
        (["station_means.read_records->records", "station_means.clean<-records"], None, None),
        (["station_means.clean.drop_blanks<-records"], "station_means.clean<-records", None),
    ]
    assert (
        ["station_means.clean.drop_duplicates->run_log"],
        None,
        "station_means.clean->run_log",
    ) in channel_ends(model, "run_log")
    assert model.programs[1].desc == "Clean the station records, then plot the yearly means."


def test_functions_are_blocks_with_return_ports() -> None:
    model = model_of("# @begin f\n# @param x\n# @return y\n# @end f\n")
    assert model.programs[1].is_function and not model.programs[1].is_workflow
    assert [p.qualified_name for p in model.ports.values()] == ["f<-x", "f->y"]


def test_file_templates_get_the_file_scheme() -> None:
    model = model_of("# @begin a\n# @out y @file out/{n}.csv\n# @end a\n")
    assert model.ports[1].uri == "file:out/{n}.csv"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# @begin a\n# @in x\n", "s.py:1: @begin a has no @end"),
        ("# @end a\n", "s.py:1: @end a without an open @begin"),
        ("# @begin a\n# @begin b\n# @end a\n# @end a\n", "s.py:3: @end a does not close @begin b"),
        ("# @in x\n", "s.py:1: @in x is outside any @begin block"),
        ("# @begin a\n# @end a\n# @begin a\n# @end a\n", "s.py:3: block a is declared twice"),
        ("# @begin a\n# @in x @as y @as z\n# @end a\n", "s.py:2: x has two @as aliases"),
        ("# @begin a\n# @out x\n# @out x\n# @end a\n", "s.py:3: @out x is declared twice in a"),
        ("# @call f\n", "s.py:1: @call f is outside any @begin block"),
    ],
)
def test_unbalanced_or_duplicated_blocks_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(AnnotationError) as caught:
        model_of(text)
    assert message in caught.value.message


def test_a_block_never_spans_two_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a.py", tmp_path / "b.py"
    first.write_text("# @begin a\n")
    second.write_text("# @end a\n")
    with pytest.raises(AnnotationError) as caught:
        load_model([first, second])
    assert caught.value.detail == [
        f"{first}:1: @begin a has no @end",
        f"{second}:1: @end a without an open @begin",
    ]


def test_cli_model_json_is_the_model(fixtures: Path) -> None:
    result = runner.invoke(app, ["yw", "model", str(fixtures / "station_means.py"), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document == load_model([fixtures / "station_means.py"]).to_dict()
    kinds = {p["qualified_name"]: p["kind"] for p in document["programs"]}
    assert kinds["station_means.clean"] == "workflow"
    assert kinds["station_means.plot_means"] == "step"


def test_cli_reports_an_annotation_error_with_exit_code_2(tmp_path: Path) -> None:
    script = tmp_path / "bad.R"
    script.write_text("# @begin a\n")
    result = runner.invoke(app, ["yw", "model", str(script)])
    assert result.exit_code == 2
    assert squeezed(f"{script}:1: @begin a has no @end") in squeezed(result.output)
    assert "Traceback" not in result.output
