"""Recon: a real run's files bound to the workflow's data via @uri templates; @log lines;
reconfacts.P; the hybrid graph."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from cairn.cli.main import app
from cairn.errors import Invalid
from cairn.provenance.yw import UriTemplate, load_model
from cairn.provenance.yw.graph import to_dot
from cairn.provenance.yw.recon import (
    FileRecord,
    hybrid_resources,
    read_file_records,
    recon_facts,
    reconstruct,
)
from cairn.provenance.yw.view import build_view

from .conftest import FIXTURES, needs

runner = CliRunner()
SCRIPT = FIXTURES / "station_means.py"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where station_means.py really ran over two station files."""
    base = tmp_path_factory.mktemp("run")
    raw = base / "data" / "raw"
    raw.mkdir(parents=True)
    (raw / "station_A_2020.csv").write_text("a,1\na,1\n,\nb,3\n")
    (raw / "station_B_2020.csv").write_text("c,5\n")
    subprocess.run([sys.executable, str(SCRIPT), "2020"], cwd=base, check=True, timeout=60)
    (base / "run.yaml").write_text(
        "inputs:\n"
        "  - data/raw/station_A_2020.csv\n"
        f"  - {base}/data/raw/station_B_2020.csv\n"  # absolute, under the base
        "outputs:\n"
        "  - path: results/run.log\n"
        f"    sha256: '{'c' * 64}'\n"
        "  - ./results/2020/means.txt\n"
        "  - results/scratch.tmp\n"
    )
    return base


def test_file_records_read_paths_and_hashes(run_dir: Path) -> None:
    records = read_file_records(run_dir / "run.yaml")
    assert [r.role for r in records] == ["input", "input", "output", "output", "output"]
    assert records[2] == FileRecord("results/run.log", "output", "c" * 64)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("inputs: [a\n", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("inputs: []\nextra: 1\n", "unknown keys extra"),
        ("inputs: a.csv\n", "inputs: must be a list"),
        ("outputs:\n  - 3\n", "outputs[0]: expected a path"),
        ("outputs:\n  - path: a\n    sha256: 1234\n", "sha256 must be 64 hex digits"),
    ],
)
def test_bad_file_records_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    listing = tmp_path / "run.yaml"
    listing.write_text(text)
    with pytest.raises(Invalid, match=re.escape(message)):
        read_file_records(listing)


def test_an_empty_listing_has_no_files(tmp_path: Path) -> None:
    (tmp_path / "empty.yaml").write_text("")
    assert read_file_records(tmp_path / "empty.yaml") == []


def test_recon_binds_files_variables_and_log_lines(run_dir: Path) -> None:
    model = load_model([SCRIPT])
    result = reconstruct(model, read_file_records(run_dir / "run.yaml"), base=run_dir)
    paths = {r.path: r for r in result.resources}
    station_b = paths["data/raw/station_B_2020.csv"]  # made relative to the base
    # bound at the workflow level and at the step level, as YesWorkflow's recon does
    assert [model.data[d].qualified_name for d in station_b.data_ids] == [
        "[raw_records]",
        "station_means[raw_records]",
    ]
    values = {
        (model.uri_variables[v - 1].name, value)
        for r, v, value in result.uri_values
        if r == station_b.id
    }
    assert values == {("station", "B"), ("year", "2020")}
    assert result.unmatched_files == ["results/scratch.tmp"]
    assert result.unmatched_templates == []
    log = paths["results/run.log"]
    assert log.sha256 == "c" * 64  # as given
    assert paths["results/2020/means.txt"].sha256 is not None  # hashed from the run folder
    logged = {
        (model.log_templates[0].variables[v - 1][1], value)
        for r, _, v, value in result.log_values
        if r == log.id
    }
    assert logged == {("timestamp", "2026-12-01T00:00:00"), ("count", "2")}


def test_a_template_that_matches_nothing_is_reported(run_dir: Path) -> None:
    model = load_model([SCRIPT])
    result = reconstruct(model, [FileRecord("data/raw/station_A_2020.csv", "input")])
    unmatched = {item["port"] for item in result.unmatched_templates}
    assert unmatched == {
        "station_means->plot",
        "station_means->run_log",
        "station_means.clean.drop_duplicates->run_log",
        "station_means.plot_means->plot",
    }


def test_a_missing_log_file_is_reported(tmp_path: Path) -> None:
    model = load_model([SCRIPT])
    result = reconstruct(model, [FileRecord("results/run.log", "output")], base=tmp_path)
    assert result.missing_logs == ["results/run.log"]


def test_c3c4_monthly_files_bind_years_and_month(fixtures: Path) -> None:
    model = load_model([fixtures / "c3c4_listing1.m"])
    records = [
        FileRecord(
            f"inputs/narr_apcp_rescaled_monthly/apcp_monthly_2000_2010_mean.{m:02d}.nc", "input"
        )
        for m in range(1, 13)
    ] + [FileRecord("inputs/other/apcp_monthly_2000_2010_mean.01.nc", "input")]
    result = reconstruct(model, records)
    assert len([r for r in result.resources if r.data_ids]) == 12
    months = sorted(v for _, var, v in result.uri_values if var == 3)
    assert months == [f"{m:02d}" for m in range(1, 13)]
    assert {v for _, var, v in result.uri_values if var in (1, 2)} == {"2000", "2010"}


def test_ohibc_directory_variable_spans_folders(fixtures: Path) -> None:
    model = load_model([fixtures / "ohibc_listing2.R"])
    result = reconstruct(model, [FileRecord("prep/lsp/v2017/output/lsp_status.csv", "output")])
    assert [v for _, _, v in result.uri_values] == ["prep/lsp/v2017"]


def test_template_matching_rules() -> None:
    twice = UriTemplate("file:run/{id}/{id}_{}.img")
    assert twice.scheme == "file" and twice.variables == ["id"]
    assert twice.match("run/a7/a7_x.img") == {"id": "a7"}
    assert twice.match("run/a7/b8_x.img") is None  # a repeated variable binds once
    assert UriTemplate("out//data/").path == "out/data"
    assert UriTemplate("file:out/{n}.csv").match("./out/3.csv") == {"n": "3"}
    assert UriTemplate("out/{n}.csv").match("out/3.csv.bak") is None  # whole path only
    assert UriTemplate("C:/data/{n}").scheme is None


@given(
    st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True),
    st.from_regex(r"[a-z0-9_]{1,8}", fullmatch=True),
)
def test_a_filled_template_gives_its_values_back(x: str, y: str) -> None:
    assert UriTemplate("file:a/{x}_{y}.csv").match(f"a/{x}_{y}.csv") == {"x": x, "y": y}


def test_hybrid_graph_expands_data_into_files(run_dir: Path) -> None:
    model = load_model([SCRIPT])
    result = reconstruct(model, read_file_records(run_dir / "run.yaml"), base=run_dir)
    view = build_view(model, depth=2)
    dot = to_dot(view, resources=hybrid_resources(result, view))
    assert 'label="data/raw/station_A_2020.csv\\n' in dot
    assert f"results/run.log\\n{'c' * 12}" in dot
    assert dot.count('fillcolor="#FFCC99"') == 4
    assert 'label="raw_records"' not in dot  # replaced by its files
    assert 'label="clean_records"' in dot  # no file: stays a data item


@needs("swipl")
def test_recon_facts_join_with_the_model_in_prolog(run_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["yw", "facts", str(SCRIPT), "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "yw",
            "recon",
            str(SCRIPT),
            "-f",
            str(run_dir / "run.yaml"),
            "--base",
            str(run_dir),
            "-o",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    goal = (
        "forall((program(P, 'read_records', _, _, _), has_in_port(P, I), port(I, _, _, _, _, D), "
        "data_resource(D, R), resource(R, Uri)), (write(Uri), nl))"
    )
    files = ", ".join(
        f"'{tmp_path / n}'" for n in ("yw_extract_facts.P", "yw_model_facts.P", "reconfacts.P")
    )
    done = subprocess.run(
        ["swipl", "-q", "-g", f"consult([{files}])", "-g", goal, "-t", "halt"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == [
        "data/raw/station_A_2020.csv",
        "data/raw/station_B_2020.csv",
    ]


def test_cli_recon_json_and_hybrid_dot(run_dir: Path, tmp_path: Path) -> None:
    graph = tmp_path / "hybrid.dot"
    result = runner.invoke(
        app,
        [
            "yw",
            "recon",
            str(SCRIPT),
            "-f",
            str(run_dir / "run.yaml"),
            "--base",
            str(run_dir),
            "-o",
            str(tmp_path / "facts"),
            "--graph",
            str(graph),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["unmatched_files"] == ["results/scratch.tmp"]
    assert summary["log_entries"] == 1
    assert (
        (tmp_path / "facts" / "reconfacts.P")
        .read_text()
        .startswith("\n% FACT: resource(resource_id, resource_uri).\n")
    )
    assert "#FFCC99" in graph.read_text()
    text = recon_facts(reconstruct(load_model([SCRIPT]), []))
    assert text.count("% FACT:") == 4  # every section headed, even with no file


def test_lineage_of_a_run_file_on_the_hybrid_graph(run_dir: Path) -> None:
    from cairn.provenance.yw import queries

    model = load_model([SCRIPT])
    result = reconstruct(model, read_file_records(run_dir / "run.yaml"), base=run_dir)
    view = build_view(model)
    files = hybrid_resources(result, view)
    answer = queries.upstream(view, "results/2020/means.txt", files)
    assert {f["path"] for f in answer.files} == {
        "data/raw/station_A_2020.csv",
        "data/raw/station_B_2020.csv",
        "results/2020/means.txt",
    }
    assert "read_records" in answer.steps
    down = queries.downstream(view, "data/raw/station_B_2020.csv", files)
    assert {f["path"] for f in down.files} == {
        "data/raw/station_A_2020.csv",  # the same data item: both stations feed read_records
        "data/raw/station_B_2020.csv",
        "results/run.log",
        "results/2020/means.txt",
    }


def test_cli_query_with_a_run_answers_with_its_files(run_dir: Path, tmp_path: Path) -> None:
    drawn = tmp_path / "up.dot"
    result = runner.invoke(
        app,
        [
            "yw",
            "query",
            "upstream",
            str(SCRIPT),
            "-d",
            "results/run.log",
            "-f",
            str(run_dir / "run.yaml"),
            "--base",
            str(run_dir),
            "-o",
            str(drawn),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert [f["data"] for f in answer["files"]] == ["raw_records", "raw_records", "run_log"]
    assert "#FFCC99" in drawn.read_text() and "plot_means" not in drawn.read_text()
