"""YesWorkflow 0.2 facts: exact names, arities and layout, and SWI-Prolog reads them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from typer.testing import CliRunner

from cairn.cli.main import app
from cairn.provenance.yw import extract_facts, load_model, model_facts
from cairn.provenance.yw.facts import atom

from .conftest import needs, squeezed

runner = CliRunner()

EXTRACT_HEADERS = [
    "extract_source(source_id, source_path)",
    "annotation(annotation_id, source_id, line_number, tag, keyword, value)",
    "annotation_qualifies(qualifying_annotation_id, primary_annotation_id)",
]
MODEL_HEADERS = [
    "program(program_id, program_name, qualified_program_name, begin_annotation_id, "
    "end_annotation_id)",
    "workflow(program_id)",
    "function(program_id)",
    "has_subprogram(program_id, subprogram_id)",
    "port(port_id, port_type, port_name, qualified_port_name, port_annotation_id, data_id)",
    "port_alias(port_id, alias)",
    "port_uri_template(port_id, uri)",
    "has_in_port(block_id, port_id)",
    "has_out_port(block_id, port_id)",
    "data(data_id, data_name, qualified_data_name)",
    "channel(channel_id, data_id)",
    "port_connects_to_channel(port_id, channel_id)",
    "inflow_connects_to_channel(port_id, channel_id)",
    "outflow_connects_to_channel(port_id, channel_id)",
    "uri_variable(uri_variable_id, variable_name, port_id)",
    "log_template(log_template_id, port_id, entry_template, log_annotation_id)",
    "log_template_variable(log_variable_id, variable_name, log_template_id)",
]


def headers(text: str) -> list[str]:
    return re.findall(r"^% FACT: (.*)\.$", text, flags=re.MULTILINE)


def test_every_section_is_headed_even_when_empty(fixtures: Path) -> None:
    model = load_model([fixtures / "ohibc_listing2.R"])  # no workflow, alias or log
    assert headers(extract_facts(model)) == EXTRACT_HEADERS
    text = model_facts(model)
    assert headers(text) == MODEL_HEADERS
    assert "% FACT: workflow(program_id).\n\n% FACT: function(program_id).\n" in text


def test_each_fact_has_its_section_arity(fixtures: Path) -> None:
    model = load_model([fixtures / "station_means.py"])
    for text in (extract_facts(model), model_facts(model)):
        arity = {}
        for header in headers(text):
            name, args = header.split("(", 1)
            arity[name] = args.count(",") + 1
        for line in text.splitlines():
            if line and not line.startswith("%"):
                name = line.split("(", 1)[0]
                assert name in arity, line
                bare = re.sub(r"'(?:[^'\\\\]|\\\\.)*'", "A", line)  # quoted atoms
                assert bare.count(",") + 1 == arity[name], line


def test_names_as_yesworkflow_writes_them(fixtures: Path) -> None:
    model = load_model([fixtures / "station_means.py"])
    text = model_facts(model)
    assert "program(2, 'read_records', 'station_means.read_records', " in text
    assert "'station_means.clean.drop_duplicates->run_log'" in text
    assert "'station_means<-raw_csv'" in text
    assert "port_alias(2, 'raw_records')." in text
    assert "data(2, 'raw_records', '[raw_records]')." in text
    assert "'station_means.clean[no_blanks]'" in text
    assert "log_template(1, 15, '{timestamp} dropped {count} rows', " in text
    assert "log_template_variable(2, 'count', 1)." in text
    extract = extract_facts(model)
    assert "annotation(5, 1, 5, 'in', '@in', 'raw_csv')." in extract
    assert (
        "annotation(7, 1, 5, 'uri', '@URI', 'file:data/raw/station_{station}_{year}.csv')."
        in extract
    )


def test_atoms_are_quoted_and_escaped() -> None:
    assert atom("it's a \\ path\nnext") == "'it\\'s a \\\\ path\\nnext'"
    assert atom(7) == "7" and atom(None) == "nil"


def test_cli_writes_both_files_into_a_new_or_existing_folder(
    fixtures: Path, tmp_path: Path
) -> None:
    out = tmp_path / "facts" / "deep"
    for _ in range(2):  # created, then reused
        result = runner.invoke(
            app, ["yw", "facts", str(fixtures / "c3c4_listing1.m"), "-o", str(out), "--json"]
        )
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["yw_extract_facts.P", "yw_model_facts.P"]
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    refused = runner.invoke(
        app, ["yw", "facts", str(fixtures / "c3c4_listing1.m"), "-o", str(blocker)]
    )
    assert refused.exit_code == 2 and squeezed("not a directory") in squeezed(refused.output)


@needs("swipl")
def test_swi_prolog_loads_the_facts_and_answers_a_join(fixtures: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["yw", "facts", str(fixtures / "ohibc_listing2.R"), "-o", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    files = [tmp_path / "yw_extract_facts.P", tmp_path / "yw_model_facts.P"]
    # which step feeds which, through which data: port -> channel -> port, as YW's views join
    goal = (
        "forall((has_out_port(P1, O), port_connects_to_channel(O, C), "
        "port_connects_to_channel(I, C), has_in_port(P2, I), P1 \\== P2, "
        "program(P1, N1, _, _, _), program(P2, N2, _, _, _), channel(C, D), data(D, DN, _)), "
        "(write(N1-DN-N2), nl))"
    )
    done = subprocess.run(
        ["swipl", "-q", "-g", f"consult(['{files[0]}', '{files[1]}'])", "-g", goal, "-t", "halt"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "output_estimate_status_file_by_region_since_1980-status_df_data-write_status_to_csv_file"
    ]
    assert "Warning" not in done.stderr and "error" not in done.stderr.lower()


@needs("swipl")
def test_awkward_names_survive_a_round_trip_through_prolog(tmp_path: Path) -> None:
    name = "it's\\a\x01é"
    script = tmp_path / "odd.py"
    script.write_text(f"# @begin {name}\n# @desc two\n# lines\n# @end\n", encoding="utf-8")
    result = runner.invoke(app, ["yw", "facts", str(script), "-o", str(tmp_path / "f")])
    assert result.exit_code == 0, result.output
    goal = "forall(annotation(_, _, _, T, _, V), (atom_codes(V, C), write(T-C), nl))"
    facts = tmp_path / "f" / "yw_extract_facts.P"
    done = subprocess.run(
        ["swipl", "-q", "-g", f"consult('{facts}')", "-g", goal, "-t", "halt"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr

    def codes(text: str) -> str:
        return "[" + ",".join(str(ord(c)) for c in text) + "]"

    assert done.stdout.splitlines() == [
        f"begin-{codes(name)}",
        f"desc-{codes('two' + chr(10) + 'lines')}",
        f"end-{codes('nil')}",
    ]
