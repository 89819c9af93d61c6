"""Graphviz graphs: the three views, nesting depth, YesWorkflow's styling, rendering by dot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cairn.cli.main import app
from cairn.errors import Invalid
from cairn.provenance.yw import load_model
from cairn.provenance.yw.graph import render, to_dot
from cairn.provenance.yw.view import build_view

from .conftest import needs

runner = CliRunner()


def labels(dot: str, colour: str) -> set[str]:
    """Labels of the nodes filled with ``colour``."""
    return set(re.findall(rf'\[label="([^"]*)"[^\]]*fillcolor="{colour}"', dot))


def test_combined_view_shows_the_top_workflow_and_its_direct_steps(fixtures: Path) -> None:
    dot = to_dot(build_view(load_model([fixtures / "station_means.py"])))
    assert labels(dot, "#CCFFCC") == {"read_records", "clean", "yearly_means", "plot_means"}
    assert labels(dot, "#FFFFCC") == {
        "raw_records",
        "records",
        "clean_records",
        "run_log",
        "means",
        "plot",
    }
    assert labels(dot, "#FCFCFC") == {"year"}  # a parameter
    assert "cluster" not in dot and "drop_blanks" not in dot
    assert 'style="rounded,filled"' in dot


def test_depth_opens_nested_workflows_as_clusters(fixtures: Path) -> None:
    dot = to_dot(build_view(load_model([fixtures / "station_means.py"]), depth=2))
    assert labels(dot, "#CCFFCC") == {
        "read_records",
        "drop_blanks",
        "drop_duplicates",
        "yearly_means",
        "plot_means",
    }
    cluster = dot[dot.index("subgraph cluster_") : dot.index("}\nedge")]
    assert 'label="clean"' in cluster and "drop_blanks" in cluster and "no_blanks" in cluster
    assert "records" not in cluster.replace("no_blanks", "")  # the port's data stays outside


def test_process_view_joins_steps_by_data(fixtures: Path) -> None:
    dot = to_dot(build_view(load_model([fixtures / "ohibc_listing2.R"])), "process")
    assert labels(dot, "#FFFFCC") == set()
    assert re.search(r's1 -> s2 \[label="status_df_data"\]', dot)


def test_data_view_joins_data_by_step(fixtures: Path) -> None:
    dot = to_dot(build_view(load_model([fixtures / "ohibc_listing2.R"])), "data")
    assert labels(dot, "#CCFFCC") == set()
    step = 'label="write_status_to_csv_file"'
    assert re.search(rf"d\d+ -> d\d+ \[{step}\]", dot)


@pytest.mark.parametrize("bad", [lambda v: to_dot(v, "sideways"), lambda v: build_view(v.model, 0)])
def test_bad_view_or_depth_is_invalid(fixtures: Path, bad: object) -> None:
    view = build_view(load_model([fixtures / "c3c4_listing1.m"]))
    with pytest.raises(Invalid):
        bad(view)  # type: ignore[operator]


def test_bad_output_paths_are_refused(tmp_path: Path) -> None:
    with pytest.raises(Invalid, match="unknown output format"):
        render("digraph {}", tmp_path / "g.jpeg2000")
    with pytest.raises(Invalid, match="no such folder"):
        render("digraph {}", tmp_path / "absent" / "g.dot")


@needs("dot")
@pytest.mark.parametrize("fixture", ["station_means.py", "ohibc_listing2.R", "c3c4_listing1.m"])
@pytest.mark.parametrize("view", ["process", "data", "combined"])
def test_dot_accepts_every_view(fixtures: Path, fixture: str, view: str) -> None:
    text = to_dot(build_view(load_model([fixtures / fixture]), depth=3), view)
    done = subprocess.run(
        ["dot", "-Tcanon"], input=text, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


@needs("dot")
def test_cli_renders_svg_and_png(fixtures: Path, tmp_path: Path) -> None:
    script = str(fixtures / "station_means.py")
    svg, png = tmp_path / "g.svg", tmp_path / "g.png"
    assert (
        runner.invoke(app, ["yw", "graph", script, "-o", str(svg), "--depth", "2"]).exit_code == 0
    )
    assert "<svg" in svg.read_text() and "drop_duplicates" in svg.read_text()
    result = runner.invoke(app, ["yw", "graph", script, "--view", "process", "-o", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_prints_dot_without_output(fixtures: Path) -> None:
    result = runner.invoke(
        app, ["yw", "graph", str(fixtures / "c3c4_listing1.m"), "--view", "data"]
    )
    assert result.exit_code == 0
    assert result.stdout.startswith("digraph Workflow {") and "Rain_Matrix" in result.stdout


def test_deep_nesting_draws_within_the_depth_limit() -> None:
    from cairn.provenance.yw import build_model, extract_text

    levels = 300
    text = "".join(f"# @begin b{i}\n" for i in range(levels))
    text += "# @in x\n# @out y\n" + "".join(f"# @end b{i}\n" for i in reversed(range(levels)))
    view = build_view(build_model(extract_text(text, path="deep.py")), depth=100)
    assert len(view.clusters) == 99 and to_dot(view).count("subgraph") == 99
    with pytest.raises(Invalid, match="from 1 to 100"):
        build_view(view.model, depth=101)


@needs("dot")
def test_the_installed_command_draws_a_real_script(fixtures: Path, tmp_path: Path) -> None:
    cairn = Path(sys.executable).with_name("cairn")
    target = tmp_path / "wf.svg"
    done = subprocess.run(
        [str(cairn), "yw", "graph", str(fixtures / "station_means.py"), "-o", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "plot_means" in target.read_text()
