"""Prospective queries: upstream, downstream, inputs, outputs, depends, and their subgraphs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cairn.cli.main import app
from cairn.errors import NotFound
from cairn.provenance.yw import build_model, extract_text, load_model, queries
from cairn.provenance.yw.graph import to_dot
from cairn.provenance.yw.view import View, build_view

from .conftest import squeezed

runner = CliRunner()

TWO_BRANCHES = """
# @begin two
# @in a
# @in c
# @out b
# @out d
#   @begin left
#   @in a
#   @out b
#   @end left
#   @begin right
#   @in c
#   @out d
#   @end right
# @end two
"""


@pytest.fixture
def station(fixtures: Path) -> View:
    return build_view(load_model([fixtures / "station_means.py"]))


def test_upstream_of_a_data_item(station: View) -> None:
    answer = queries.upstream(station, "means")
    assert set(answer.data) == {"year", "raw_records", "records", "clean_records", "means"}
    assert set(answer.steps) == {"read_records", "clean", "yearly_means"}


def test_downstream_of_a_data_item(station: View) -> None:
    answer = queries.downstream(station, "clean_records")
    assert set(answer.data) == {"clean_records", "means", "plot"}
    assert set(answer.steps) == {"yearly_means", "plot_means"}


def test_lineage_at_depth_two_goes_through_the_nested_steps(fixtures: Path) -> None:
    deep = build_view(load_model([fixtures / "station_means.py"]), depth=2)
    answer = queries.upstream(deep, "clean_records")
    assert set(answer.steps) == {"read_records", "drop_blanks", "drop_duplicates"}
    assert "no_blanks" in answer.data


def test_inputs_and_outputs(station: View, fixtures: Path) -> None:
    assert queries.inputs(station).data == ["year", "raw_records"]
    assert queries.outputs(station).data == ["plot", "run_log"]
    ohibc = build_view(load_model([fixtures / "ohibc_listing2.R"]))
    assert queries.outputs(ohibc).data == ["lsp_status_file"]
    assert "status_df_data" not in queries.inputs(ohibc).data


def test_depends_on_one_input_or_all() -> None:
    view = build_view(build_model(extract_text(TWO_BRANCHES, path="two.py")))
    assert queries.depends(view, "b", "a")["depends"] is True
    assert queries.depends(view, "b", "c")["depends"] is False
    every = queries.depends(view, "d")
    assert every == {"output": "d", "inputs": {"a": False, "c": True}, "depends": False}


def test_an_unknown_data_item_is_not_found(station: View) -> None:
    with pytest.raises(NotFound, match="known: clean_records"):
        queries.upstream(station, "nope")


def test_a_qualified_data_name_is_accepted(station: View) -> None:
    assert (
        queries.upstream(station, "station_means[means]").data
        == queries.upstream(station, "means").data
    )


def test_an_answer_draws_as_a_subgraph(station: View) -> None:
    answer = queries.downstream(station, "clean_records")
    dot = to_dot(station, keep=answer.keep)
    assert "yearly_means" in dot and "plot_means" in dot
    assert "read_records" not in dot and "raw_records" not in dot


def test_cli_queries(fixtures: Path, tmp_path: Path) -> None:
    script = str(fixtures / "station_means.py")
    result = runner.invoke(app, ["yw", "query", "upstream", script, "-d", "plot", "--json"])
    assert result.exit_code == 0, result.output
    assert "plot_means" in json.loads(result.stdout)["steps"]
    drawn = tmp_path / "up.dot"
    result = runner.invoke(
        app, ["yw", "query", "downstream", script, "-d", "means", "-o", str(drawn), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert "plot_means" in drawn.read_text() and "read_records" not in drawn.read_text()
    outputs = runner.invoke(app, ["yw", "query", "outputs", script, "--json"])
    assert json.loads(outputs.stdout)["data"] == ["plot", "run_log"]
    missing = runner.invoke(app, ["yw", "query", "upstream", script, "-d", "nope"])
    assert missing.exit_code == 4 and squeezed("no data item 'nope'") in squeezed(missing.output)


def test_cli_depends_exit_code_says_the_answer(tmp_path: Path) -> None:
    script = tmp_path / "two.py"
    script.write_text(TWO_BRANCHES)
    yes = runner.invoke(app, ["yw", "query", "depends", str(script), "--of", "b", "--on", "a"])
    assert yes.exit_code == 0
    no = runner.invoke(app, ["yw", "query", "depends", str(script), "--of", "b", "--json"])
    assert no.exit_code == 1
    assert json.loads(no.stdout) == {
        "output": "b",
        "inputs": {"a": True, "c": False},
        "depends": False,
    }
