"""``--syscalls``: strace follows a program and its children, and sees C-level I/O."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from cairn.provenance import RunStore
from cairn.provenance.service import RunSelector, view_runs
from cairn.provenance.syscalls import parse_line, record_program

pytestmark = pytest.mark.skipif(
    shutil.which("strace") is None, reason="strace is not installed (apt install strace)"
)


def _view(store: RunStore, run_id: str) -> dict[str, object]:
    with store.uow.transaction() as session:
        (found,) = view_runs(session, RunSelector(run_id=run_id))
        return found.as_dict()


def _names(entries: object) -> dict[str, dict[str, object]]:
    assert isinstance(entries, list)
    return {os.path.basename(e["path"]): e for e in entries}


def test_a_shell_and_its_children_are_followed(store: RunStore, project: Path) -> None:
    (project / "in.txt").write_text("input\n")
    script = project / "pipeline.sh"
    script.write_text(
        "#!/bin/sh\nset -e\nmkdir -p sub\ncd sub\ncat ../in.txt > copy.txt\n"
        "( echo child >> ../child.txt )\nmv copy.txt moved.txt\n"
    )
    script.chmod(0o755)
    result = record_program([str(script)], tag="shell", store=store)
    assert result.status == "ok"
    run = _view(store, result.run_id)
    assert run["kind"] == "program"
    used, generated = _names(run["used"]), _names(run["generated"])
    assert used["in.txt"]["sha256"] == hashlib.sha256(b"input\n").hexdigest()
    assert used["pipeline.sh"]["access"] == "execute"
    assert set(generated) == {"moved.txt", "child.txt"}
    assert generated["moved.txt"]["path"] == str(project / "sub" / "moved.txt")
    assert not any(name.startswith("lib") for name in used)  # system files skipped


def test_a_c_level_write_that_audit_hooks_miss_is_captured(store: RunStore, project: Path) -> None:
    code = (
        "import sqlite3; c = sqlite3.connect('results.db'); "
        "c.execute('create table t(x)'); c.execute('insert into t values (42)'); c.commit()"
    )
    result = record_program([sys.executable, "-c", code], store=store)
    assert result.status == "ok"
    generated = _names(_view(store, result.run_id)["generated"])
    assert "results.db" in generated
    assert "results.db-journal" not in generated  # written then removed
    digest = hashlib.sha256((project / "results.db").read_bytes()).hexdigest()
    assert generated["results.db"]["sha256"] == digest
    assert store.blobs.exists(digest)
    with sqlite3.connect(project / "results.db") as db:
        assert db.execute("select x from t").fetchall() == [(42,)]


def test_an_h5py_write_is_captured(store: RunStore, project: Path, run_script: Any) -> None:
    """HDF5's C library writes the file itself: audit hooks never see it, strace does."""
    pytest.importorskip("h5py", reason="h5py is a test dependency (pip install -e '.[test]')")
    code = (
        "import h5py, sys; f = h5py.File('grid.h5', 'w'); "
        "f.create_dataset('t', data=list(range(100))); f.close(); "
        "print(h5py.File('grid.h5', 'r')['t'][42])"
    )
    result = record_program([sys.executable, "-c", code], store=store)
    assert result.status == "ok"
    generated = _names(_view(store, result.run_id)["generated"])
    assert "grid.h5" in generated
    digest = hashlib.sha256((project / "grid.h5").read_bytes()).hexdigest()
    assert generated["grid.h5"]["sha256"] == digest
    assert store.blobs.exists(digest)
    hooked = run_script(code.replace("; ", "\n"), name="hooked.py")  # the audit-hook mode
    assert "grid.h5" not in _names(_view(store, hooked.run_id)["generated"])


def test_a_netcdf4_write_is_captured(store: RunStore, project: Path, run_script: Any) -> None:
    """netCDF-C (over HDF5) writes the file itself, as h5py does: only --syscalls sees it."""
    pytest.importorskip("netCDF4", reason="netCDF4 is a test dependency (pip install -e '.[test]')")
    code = (
        "import netCDF4; d = netCDF4.Dataset('precip.nc', 'w'); d.createDimension('month', 12); "
        "v = d.createVariable('precip', 'f4', ('month',)); v[:] = list(range(12)); d.close(); "
        "print(float(netCDF4.Dataset('precip.nc')['precip'][5]))"
    )
    result = record_program([sys.executable, "-c", code], store=store)
    assert result.status == "ok"
    generated = _names(_view(store, result.run_id)["generated"])
    assert "precip.nc" in generated
    digest = hashlib.sha256((project / "precip.nc").read_bytes()).hexdigest()
    assert generated["precip.nc"]["sha256"] == digest
    assert store.blobs.exists(digest)
    hooked = run_script(code.replace("; ", "\n"), name="hooked_nc.py")  # the audit-hook mode
    assert "precip.nc" not in _names(_view(store, hooked.run_id)["generated"])


def test_exit_status_and_signals_are_kept(store: RunStore, project: Path) -> None:
    failed = record_program(["sh", "-c", "echo x > a.txt; exit 7"], store=store)
    assert (failed.status, failed.exit_code) == ("error", 7)
    assert "a.txt" in _names(_view(store, failed.run_id)["generated"])
    killed = record_program(["sh", "-c", "kill -TERM $$"], store=store)
    assert killed.status == "killed"
    assert killed.exit_code == 128 + signal.SIGTERM


def test_hex_escaped_paths_decode_to_their_exact_bytes() -> None:
    line = '42 openat(AT_FDCWD, "\\x63\\x61\\x66\\xe9", O_WRONLY|O_CREAT, 0666) = 3'
    parsed = parse_line(line)
    assert parsed is not None
    pid, call, strings, _raw, result = parsed
    assert (pid, call, result) == (42, "openat", 3)
    assert os.fsencode(strings[0]) == b"caf\xe9"
    assert parse_line("42 +++ exited with 0 +++") is None
    assert parse_line("garbage") is None


JOB_SH = """\
#!/bin/sh
# @begin job
# @in a @uri file:a.txt
# @in b @uri file:b.txt
# @out a_copy @uri file:a_copy.txt
# @out both @uri file:both.txt
# @begin copy_a
# @in a @uri file:a.txt
# @out a_copy @uri file:a_copy.txt
# @end copy_a
{ cat a.txt; echo 1; } > a_copy.txt
# @begin join
# @in a_copy @uri file:a_copy.txt
# @in b @uri file:b.txt
# @out both @uri file:both.txt
# @end join
cat a_copy.txt b.txt > both.txt
# @end job
"""


@pytest.mark.parametrize("direct", [True, False], ids=["./job.sh", "sh job.sh"])
def test_a_traced_script_s_yw_model_narrows_derivations(
    store: RunStore, project: Path, direct: bool
) -> None:
    """`--syscalls`: the annotated script is what the program executed, or the file its
    arguments name (`sh job.sh`, `Rscript job.R`): its model narrows wasDerivedFrom (#14)."""
    from cairn.provenance.w3c import read_graph

    (project / "a.txt").write_text("a\n")
    (project / "b.txt").write_text("b\n")
    script = project / "job.sh"
    script.write_text(JOB_SH)
    script.chmod(0o755)
    command = [str(script)] if direct else ["sh", "job.sh"]
    assert record_program(command, store=store).status == "ok"

    def entity(name: str) -> str:
        return "urn:sha256:" + hashlib.sha256((project / name).read_bytes()).hexdigest()

    with store.uow.transaction() as session:
        graph = read_graph(session, blobs=store.blobs)
    derived = {(o, s) for o, s, _ in graph.derived}
    a, b, job = entity("a.txt"), entity("b.txt"), entity("job.sh")
    (activity,) = graph.activities
    programs = {e for act, e in graph.used if act == activity} - {a, b, job}  # e.g. /bin/sh
    assert {s for o, s in derived if o == entity("a_copy.txt")} - programs == {a, job}
    assert {s for o, s in derived if o == entity("both.txt")} - programs == {a, b, job}
