"""`cairn record` (a real process: exit codes, argv, signals) and `cairn runs …` (CliRunner)
on a fresh local data folder."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cairn.cli.main import app
from cairn.config import get_settings

runner = CliRunner()
CAIRN = [sys.executable, "-m", "cairn.cli.main"]


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh data folder (SQLite) and project folder; settings cache cleared around."""
    data, project = tmp_path / "data", tmp_path / "project"
    project.mkdir()
    monkeypatch.setenv("CAIRN_DATA_DIR", str(data))
    monkeypatch.setenv("CAIRN_CONFIG", str(tmp_path / "absent.toml"))
    monkeypatch.delenv("CAIRN_DATABASE_URL", raising=False)
    monkeypatch.delenv("CAIRN_BLOB_URL", raising=False)
    monkeypatch.chdir(project)
    get_settings.cache_clear()
    yield project
    get_settings.cache_clear()


def cairn(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CAIRN, *args], capture_output=True, text=True, timeout=120)


def runs(*args: str) -> object:
    result = runner.invoke(app, ["runs", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_record_runs_the_script_with_its_own_options_and_exit_code(local: Path) -> None:
    (local / "in.txt").write_text("data")
    (local / "job.py").write_text(
        "import sys, pathlib\n"
        "pathlib.Path('out.txt').write_text(pathlib.Path(sys.argv[1]).read_text() + sys.argv[2])\n"
        "sys.exit(int(sys.argv[3]))\n"
    )
    done = cairn("record", "--tag", "t1", "--json", "job.py", "in.txt", "--weird", "4")
    assert done.returncode == 4, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "error" and summary["exit_code"] == 4
    assert (local / "out.txt").read_text() == "data--weird"
    listed = runs("list")
    assert isinstance(listed, list) and len(listed) == 1
    assert listed[0]["run_id"] == summary["run_id"] and listed[0]["tags"] == ["t1"]
    viewed = runs("view", "--seq", "1")
    assert isinstance(viewed, list)
    assert viewed[0]["arguments"] == ["in.txt", "--weird", "4"]
    assert {Path(u["path"]).name for u in viewed[0]["used"]} == {"job.py", "in.txt"}


def test_a_raising_script_exits_non_zero_and_keeps_the_traceback(local: Path) -> None:
    (local / "bad.py").write_text("def f():\n    raise ValueError('nope')\nf()\n")
    done = cairn("record", "bad.py")
    assert done.returncode == 1
    assert "error, exit status 1" in done.stderr
    (run,) = runs("view", "--error", "nope")  # type: ignore[misc]
    assert "ValueError: nope" in run["traceback"]


def test_runs_commands_end_to_end(local: Path, tmp_path: Path) -> None:
    (local / "a.py").write_text("import pathlib\npathlib.Path('mid.txt').write_text('m')\n")
    (local / "b.py").write_text(
        "from pathlib import Path\nPath('end.txt').write_text(Path('mid.txt').read_text() * 2)\n"
    )
    assert cairn("record", "a.py").returncode == 0
    assert cairn("record", "b.py").returncode == 0
    oldest_first = runs("list", "--order-by", "start_time")
    assert [Path(r["script"]).name for r in oldest_first] == ["a.py", "b.py"]  # type: ignore[union-attr]
    assert [Path(r["script"]).name for r in runs("list")] == ["b.py", "a.py"]  # type: ignore[union-attr]
    assert runs("list", "--tag", "nope", "--tag", "none") == []
    empty = runner.invoke(app, ["runs", "list", "--script", "zzz"])
    assert empty.exit_code == 0 and "No runs matched" in empty.output
    table = runner.invoke(app, ["runs", "list"])
    assert "a.py" in table.stdout and "b.py" in table.stdout
    plotted = tmp_path / "runs.dot"
    drawn = runner.invoke(app, ["runs", "plot", "--script", "b.py", "-o", str(plotted)])
    assert drawn.exit_code == 0, drawn.output
    assert "b.py #2" in plotted.read_text() and "a.py" not in plotted.read_text()
    assert "mid.txt" in plotted.read_text() and "end.txt" in plotted.read_text()
    none = runner.invoke(app, ["runs", "plot", "--script", "zzz", "-o", str(plotted)])
    assert none.exit_code == 1 and "No runs matched" in none.output
    traced = runs("trace", "end.txt")
    assert isinstance(traced, dict)
    assert {Path(r["script"]).name for r in traced["runs"]} == {"a.py", "b.py"}
    graph = tmp_path / "g.dot"
    assert runner.invoke(app, ["runs", "trace", "end.txt", "-o", str(graph)]).exit_code == 0
    dot = graph.read_text()
    assert "fillcolor=black" in dot and "#FFD27F" in dot and "mid.txt" in dot
    if shutil.which("dot"):
        svg = tmp_path / "g.svg"
        assert runner.invoke(app, ["runs", "trace", "end.txt", "-o", str(svg)]).exit_code == 0
        assert svg.read_text().lstrip().startswith(("<?xml", "<svg"))
    exported = runner.invoke(app, ["runs", "export", "2", "--base", str(local)])
    assert exported.stdout == 'inputs:\n  - "mid.txt"\noutputs:\n  - "end.txt"\n'
    os.remove(local / "mid.txt")
    out = tmp_path / "restored.txt"
    checked = runner.invoke(app, ["runs", "checkout", "1", "mid.txt", "--to", str(out)])
    assert checked.exit_code == 0, checked.output
    assert out.read_text() == "m"
    refused = runner.invoke(app, ["runs", "delete"])
    assert refused.exit_code == 2 and "Refusing" in refused.output
    noop = runs("delete", "--seq", "1", "--noop")
    assert isinstance(noop, dict) and len(noop["runs"]) == 1
    gone = runs("delete", "--seq", "1")
    assert isinstance(gone, dict) and gone["noop"] is False
    assert [r["seq"] for r in runs("list")] == [2]  # type: ignore[union-attr]
    missing = runner.invoke(app, ["runs", "checkout", "1", "mid.txt"])
    assert missing.exit_code == 4 and "No run" in missing.output
    counted = runs("query", "--sql", "SELECT count(*) AS n FROM runs")
    assert counted == [{"n": 1}]
    writes = runner.invoke(app, ["runs", "query", "--sql", "DELETE FROM prov_runs"])
    assert writes.exit_code == 2 and "SQL refused" in writes.output
    upstream = runs("query", "--sparql", "SELECT ?x WHERE { ?e prov:wasDerivedFrom+ ?x }")
    # run 2 is left: end.txt came from mid.txt ("m") and from b.py, which it executed
    made_from = {
        hashlib.sha256(b"m").hexdigest(),
        hashlib.sha256((local / "b.py").read_bytes()).hexdigest(),
    }
    assert {row["x"] for row in upstream} == {f"urn:sha256:{h}" for h in made_from}  # type: ignore[index,union-attr]
    asked = runner.invoke(app, ["runs", "query", "--sparql", "ASK { ?r a prov:Activity }"])
    assert asked.exit_code == 0 and "True" in asked.stdout
    no = runner.invoke(app, ["runs", "query", "--sparql", "ASK { ?r a prov:Agent, prov:Entity }"])
    assert no.exit_code == 1
    bad = runner.invoke(app, ["runs", "query", "--sparql", "SELECT ?x WHERE {"])
    assert bad.exit_code == 2 and "SPARQL syntax error" in bad.output
    prov_json = json.loads(runner.invoke(app, ["runs", "export-prov", "--seq", "2"]).stdout)
    assert len(prov_json["activity"]) == 1 and prov_json["wasDerivedFrom"]
    provn = runner.invoke(app, ["runs", "export-prov", "-f", "provn"])
    assert provn.exit_code == 0 and provn.stdout.startswith("document")
    both = runner.invoke(app, ["runs", "query", "--sql", "SELECT 1", "--prolog", "x.P"])
    assert both.exit_code == 2 and "give one of" in both.output
    bad = runner.invoke(app, ["runs", "list", "--start", "yesterday"])
    assert bad.exit_code == 2 and "not a date" in bad.output


def test_record_check_names_the_capture_modes(local: Path) -> None:
    done = runner.invoke(app, ["record", "--check", "--json"])
    assert done.exit_code == 0
    assert set(json.loads(done.stdout)) == {"python", "syscalls", "graphs", "prolog"}


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_record_syscalls_from_the_command_line(local: Path) -> None:
    done = cairn("record", "--syscalls", "--json", "--", "sh", "-c", "echo x > shell.txt")
    assert done.returncode == 0, done.stderr
    (run,) = runs("view")  # type: ignore[misc]
    assert run["kind"] == "program"
    assert [Path(g["path"]).name for g in run["generated"]] == ["shell.txt"]


def test_metadata_then_publish(local: Path, tmp_path: Path) -> None:
    (local / "job.py").write_text("import pathlib\npathlib.Path('o.txt').write_text('o')\n")
    assert cairn("record", "job.py").returncode == 0
    template = runner.invoke(app, ["runs", "metadata", "1"])
    assert template.exit_code == 0 and "license: ''" in template.stdout
    refused = runner.invoke(app, ["runs", "publish", "1", "--to", str(tmp_path)])
    assert refused.exit_code == 2 and "no license" in refused.output
    wanted = tmp_path / "meta.yaml"
    wanted.write_text("title: A job\ncreators: [Ada]\nlicense: CC0-1.0\n")
    assert runs("metadata", "1", "--set", str(wanted))["license"] == "CC0-1.0"  # type: ignore[index]
    wanted.write_text("title: [unclosed\n")
    broken = runner.invoke(app, ["runs", "metadata", "1", "--set", str(wanted)])
    assert broken.exit_code == 2 and "cannot read" in broken.output
    published = runs("publish", "1", "--to", str(tmp_path))
    assert isinstance(published, dict) and published["version"] == 1
    assert Path(str(published["path"])).is_file()
    again = runner.invoke(app, ["runs", "publish", "1", "--to", str(tmp_path)])
    assert again.exit_code != 0 and "--update" in again.output
    assert runs("publish", "1", "--to", str(tmp_path), "--update")["version"] == 2  # type: ignore[index]


def test_yw_recon_reads_a_recorded_run(local: Path, tmp_path: Path) -> None:
    from tests.provenance.yw.conftest import FIXTURES

    script = local / "station_means.py"
    shutil.copy(FIXTURES / "station_means.py", script)
    raw = local / "data" / "raw"
    raw.mkdir(parents=True)
    (raw / "station_A_2020.csv").write_text("a,1\n")
    assert cairn("record", "station_means.py", "2020").returncode == 0
    args = ["yw", "recon", str(script), "-o", str(tmp_path / "facts"), "--json"]
    done = runner.invoke(app, [*args, "--run", "1"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    bound = {r["path"]: r["data"] for r in summary["resources"] if r["data"]}
    assert "data/raw/station_A_2020.csv" in bound
    assert "results/2020/means.txt" in bound
    both = runner.invoke(app, [*args, "--run", "1", "--files", "x.yaml"])
    assert both.exit_code == 2 and "not both" in both.output
    missing = runner.invoke(app, [*args, "--run", "9"])
    assert missing.exit_code == 4


def test_versions_lists_the_contents_seen_at_a_path(local: Path) -> None:
    script = "import pathlib, sys\npathlib.Path('o.txt').write_text(sys.argv[1])\n"
    (local / "w.py").write_text(script)
    assert cairn("record", "w.py", "a").returncode == 0
    assert cairn("record", "w.py", "b").returncode == 0
    found = runs("versions", "o.txt")
    assert isinstance(found, list)
    assert [v["sha256"] for v in found] == [hashlib.sha256(x).hexdigest() for x in (b"a", b"b")]
    assert [[r["seq"] for r in v["generated_by"]] for v in found] == [[1], [2]]
    table = runner.invoke(app, ["runs", "versions", "o.txt"])
    assert table.exit_code == 0 and "2 versions of o.txt" in table.output
    missing = runner.invoke(app, ["runs", "versions", "nothing.txt"])
    assert missing.exit_code != 0 and "No recorded run saw" in missing.output
