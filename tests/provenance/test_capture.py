"""``record``: what a Python run's audit-hook capture keeps, including the hostile cases."""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from cairn.provenance import RecordResult, RunStore, end_record, recording, start_record
from cairn.provenance.capture import CaptureOptions
from cairn.provenance.errors import NotArchived, NotRecording, RecordingActive
from cairn.provenance.service import RunSelector, checkout, view_runs

Runner = Callable[..., RecordResult]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def view(store: RunStore, run_id: str) -> dict[str, object]:
    with store.uow.transaction() as session:
        (found,) = view_runs(session, RunSelector(run_id=run_id))
        return found.as_dict()


def paths(entries: object, access: str | None = None) -> dict[str, dict[str, object]]:
    assert isinstance(entries, list)
    return {
        os.path.basename(e["path"]): e for e in entries if access is None or e["access"] == access
    }


def test_a_script_run_records_inputs_outputs_script_and_environment(
    run_script: Runner, project: Path, store: RunStore
) -> None:
    (project / "in.csv").write_bytes(b"a,b\n1,2\n")
    result = run_script(
        """
        import sys, json
        with open("in.csv") as f:
            rows = f.read().splitlines()
        with open(sys.argv[1], "w") as out:
            json.dump({"rows": len(rows), "argv": sys.argv[1:]}, out)
        """,
        "out.json",
        "--flag",
        tag=["v1", "calibration"],
    )
    assert result.status == "ok" and result.exit_code == 0
    run = view(store, result.run_id)
    assert run["status"] == "ok"
    assert run["arguments"] == ["out.json", "--flag"]
    assert run["cwd"] == str(project)
    assert sorted(run["tags"]) == ["calibration", "v1"]  # type: ignore[arg-type]
    assert run["interpreter_version"].startswith("Python 3")  # type: ignore[union-attr]
    assert any(str(p).startswith("SQLAlchemy==") for p in run["packages"])  # type: ignore[attr-defined]
    used = paths(run["used"])
    assert used["in.csv"]["sha256"] == sha(b"a,b\n1,2\n")
    assert used["in.csv"]["access"] == "read"
    assert used["script.py"]["access"] == "execute"
    assert run["script_sha256"] == used["script.py"]["sha256"]
    generated = paths(run["generated"])
    content = (project / "out.json").read_bytes()
    assert generated["out.json"]["sha256"] == sha(content)
    assert b'"argv": ["out.json", "--flag"]' in content
    assert store.blobs.read_bytes(sha(content)) == content  # archived


def test_interpreter_files_are_not_recorded(run_script: Runner, store: RunStore) -> None:
    result = run_script(
        "import json, email.mime.text, pathlib\npathlib.Path('o.txt').write_text('x')\n"
    )
    run = view(store, result.run_id)
    assert set(paths(run["used"])) == {"script.py"}
    assert set(paths(run["generated"])) == {"o.txt"}


def test_a_script_that_raises_is_recorded_with_its_traceback(
    run_script: Runner, store: RunStore
) -> None:
    result = run_script(
        "import pathlib\npathlib.Path('partial.txt').write_text('half')\n"
        "raise ValueError('bad data')\n"
    )
    assert result.status == "error" and result.exit_code == 1
    run = view(store, result.run_id)
    assert run["error_message"] == "ValueError: bad data"
    assert "Traceback" in str(run["traceback"]) and "bad data" in str(run["traceback"])
    assert "partial.txt" in paths(run["generated"])


def test_sys_exit_with_a_status_is_an_error_and_exit_zero_is_not(run_script: Runner) -> None:
    assert run_script("import sys; sys.exit(3)").exit_code == 3
    assert run_script("import sys; sys.exit(3)").status == "error"
    assert run_script("import sys; sys.exit(0)").status == "ok"


def test_a_script_killed_by_a_signal_is_closed_as_killed(
    run_script: Runner, store: RunStore
) -> None:
    result = run_script(
        "import os, signal, pathlib\npathlib.Path('before.txt').write_text('1')\n"
        "os.kill(os.getpid(), signal.SIGTERM)\npathlib.Path('after.txt').write_text('2')\n"
    )
    assert result.status == "killed"
    assert result.exit_code == 128 + signal.SIGTERM
    run = view(store, result.run_id)
    assert run["error_message"] == "killed by SIGTERM"
    assert set(paths(run["generated"])) == {"before.txt"}
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored


def test_overwriting_the_input_keeps_the_version_read(
    run_script: Runner, project: Path, store: RunStore, tmp_path: Path
) -> None:
    (project / "data.txt").write_bytes(b"original")
    result = run_script(
        "from pathlib import Path\ntext = Path('data.txt').read_text()\n"
        "Path('data.txt').write_text(text.upper() + '!')\n"
    )
    run = view(store, result.run_id)
    assert paths(run["used"])["data.txt"]["sha256"] == sha(b"original")
    assert paths(run["generated"])["data.txt"]["sha256"] == sha(b"ORIGINAL!")
    with store.uow.transaction() as session:
        checkout(session, store.blobs, result.run_id, "data.txt", to=tmp_path / "r", access="read")
        checkout(session, store.blobs, result.run_id, "data.txt", to=tmp_path / "w")
    assert (tmp_path / "r").read_bytes() == b"original"
    assert (tmp_path / "w").read_bytes() == b"ORIGINAL!"


def test_deleting_the_input_keeps_it_archived(
    run_script: Runner, project: Path, store: RunStore, tmp_path: Path
) -> None:
    (project / "gone.txt").write_bytes(b"read me once")
    result = run_script(
        "import os, pathlib\npathlib.Path('gone.txt').read_text()\nos.remove('gone.txt')\n"
    )
    assert not (project / "gone.txt").exists()
    with store.uow.transaction() as session:
        checkout(session, store.blobs, result.run_id, str(project / "gone.txt"), to=tmp_path)
    assert (tmp_path / "gone.txt").read_bytes() == b"read me once"


def test_temporary_files_renamed_into_place_count_once(run_script: Runner, store: RunStore) -> None:
    result = run_script(
        "import os, shutil, pathlib\npathlib.Path('tmp.part').write_text('x')\n"
        "os.replace('tmp.part', 'final.txt')\n"
        "shutil.copy('final.txt', 'copy.txt')\npathlib.Path('scratch').write_text('y')\n"
        "os.remove('scratch')\n"
    )
    run = view(store, result.run_id)
    assert set(paths(run["generated"])) == {"final.txt", "copy.txt"}
    assert set(paths(run["used"])) == {"script.py"}  # final.txt was the run's own output


def test_a_file_over_the_size_limit_is_recorded_by_hash_only(
    run_script: Runner, project: Path, store: RunStore, tmp_path: Path
) -> None:
    big = os.urandom(4096)
    (project / "big.bin").write_bytes(big)
    result = run_script(
        "import pathlib\npathlib.Path('big.bin').read_bytes()",
        options=CaptureOptions(max_archive_bytes=1000),
    )
    entry = paths(view(store, result.run_id)["used"])["big.bin"]
    assert entry["sha256"] == sha(big)
    assert entry["archived"] is False
    assert "too large" in str(entry["flagged"])
    assert not store.blobs.exists(sha(big))
    with store.uow.transaction() as session, pytest.raises(NotArchived, match="by hash only"):
        checkout(session, store.blobs, result.run_id, "big.bin", to=tmp_path)


def test_include_and_exclude_patterns(run_script: Runner, project: Path, store: RunStore) -> None:
    for name in ("a.csv", "b.log", "c.csv"):
        (project / name).write_text(name)
    source = (
        "import pathlib\nfor n in ('a.csv', 'b.log', 'c.csv'):\n    pathlib.Path(n).read_text()\n"
    )
    only_csv = run_script(source, options=CaptureOptions(include=["*.csv"]))
    no_c = run_script(source, options=CaptureOptions(exclude=["*/c.csv"]))
    # the script itself is always kept (RunManager archives it whatever the patterns say)
    assert set(paths(view(store, only_csv.run_id)["used"])) == {"script.py", "a.csv", "c.csv"}
    assert set(paths(view(store, no_c.run_id)["used"])) == {"script.py", "a.csv", "b.log"}


def test_a_non_utf8_path_is_kept_escaped_and_flagged(
    run_script: Runner, project: Path, store: RunStore
) -> None:
    name = b"caf\xe9.txt"
    with open(os.path.join(os.fsencode(project), name), "wb") as f:
        f.write(b"latin-1 name")
    result = run_script(
        "import os, pathlib\npathlib.Path(os.fsdecode(b'caf\\xe9.txt')).read_bytes()\n"
    )
    entry = paths(view(store, result.run_id)["used"])["caf\\xe9.txt"]
    assert entry["sha256"] == sha(b"latin-1 name")
    assert "non-UTF-8" in str(entry["flagged"])


def test_a_symlink_is_recorded_at_the_path_used_with_the_target_content(
    run_script: Runner, project: Path, store: RunStore
) -> None:
    (project / "target.txt").write_bytes(b"behind the link")
    os.symlink(project / "target.txt", project / "link.txt")
    result = run_script("import pathlib\npathlib.Path('link.txt').read_text()\n")
    entry = paths(view(store, result.run_id)["used"])["link.txt"]
    assert entry["path"] == str(project / "link.txt")
    assert entry["sha256"] == sha(b"behind the link")


def test_start_and_end_record_an_interactive_stretch(store: RunStore, project: Path) -> None:
    (project / "x.txt").write_text("x")
    run_id = start_record(tag="explore", store=store)
    with pytest.raises(RecordingActive):
        start_record(store=store)
    (project / "x.txt").read_text()
    Path("y.txt").write_text("y")
    assert end_record() == run_id
    with pytest.raises(NotRecording):
        end_record()
    run = view(store, run_id)
    assert run["kind"] == "console" and run["tags"] == ["explore"]
    assert set(paths(run["used"])) == {"x.txt"}
    assert set(paths(run["generated"])) == {"y.txt"}


def test_a_recorded_block_keeps_the_exception_it_raised(store: RunStore, project: Path) -> None:
    with pytest.raises(KeyError), recording(tag="block", store=store) as run_id:
        Path("z.txt").write_text("z")
        raise KeyError("missing column")
    run = view(store, run_id)
    assert run["kind"] == "block" and run["status"] == "error"
    assert "KeyError" in str(run["error_message"])
    assert set(paths(run["generated"])) == {"z.txt"}
    Path("after.txt").write_text("not recorded")  # the hook is idle again
    assert set(paths(view(store, run_id)["generated"])) == {"z.txt"}


def test_a_rerun_over_stored_content_still_counts_it_archived(
    run_script: Runner, project: Path, store: RunStore
) -> None:
    (project / "same.txt").write_bytes(b"unchanged input")
    source = (
        "import pathlib\npathlib.Path('out.txt').write_text(pathlib.Path('same.txt').read_text())\n"
    )
    first, second = run_script(source), run_script(source)
    for result in (first, second):
        run = view(store, result.run_id)
        assert paths(run["used"])["same.txt"]["archived"] is True
        assert paths(run["generated"])["out.txt"]["archived"] is True
    assert store.blobs.read_bytes(sha(b"unchanged input")) == b"unchanged input"
    assert not list((store.work_dir).glob("record-*"))  # no staging left behind


def test_small_files_are_packed_and_a_spent_budget_stages_files(
    run_script: Runner, project: Path, store: RunStore, tmp_path: Path
) -> None:
    """Small inputs and outputs are held in memory and packed by the blob store (no file per
    blob); past the capture's memory budget a small file is staged as a file instead."""
    from cairn.provenance.capture import MemoryBudget, snapshot

    for name in ("a.txt", "b.txt"):
        (project / name).write_text(f"content of {name}")
    result = run_script(
        "import pathlib\n"
        "text = pathlib.Path('a.txt').read_text() + pathlib.Path('b.txt').read_text()\n"
        "pathlib.Path('out.txt').write_text(text)\n"
    )
    for name in ("a.txt", "b.txt", "out.txt"):
        digest = hashlib.sha256((project / name).read_bytes()).hexdigest()
        assert store.blobs.read_bytes(digest) == (project / name).read_bytes()
        assert store.blobs.local_path(digest) is None  # in a pack, not a file of its own
    with store.uow.transaction() as session:
        (view,) = view_runs(session, RunSelector(run_id=result.run_id))
    assert all(v.archived_sha256 for v, _ in view.used)
    spent = snapshot(
        str(project / "a.txt"),
        "read",
        stage_dir=tmp_path,
        max_archive_bytes=1 << 20,
        memory=MemoryBudget(left=3),
    )
    assert spent.data is None and spent.staged is not None
    assert Path(spent.staged).read_bytes() == (project / "a.txt").read_bytes()
    held = snapshot(
        str(project / "a.txt"), "read", stage_dir=tmp_path, max_archive_bytes=1 << 20,
        memory=MemoryBudget(),
    )  # fmt: skip
    assert held.staged is None and held.data == (project / "a.txt").read_bytes()
