"""Scratch names carry their owner: a killed process's files are found and removed, a running
one's never, and a process id reused by another process does not keep them alive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from cairn.tempfiles import (
    find_leftovers,
    owner_alive,
    remove_orphans,
    remove_stale,
    scratch_dir,
    scratch_file,
)

HAS_PROC = Path("/proc/self/stat").exists()

# A child that makes an upload copy and a staging folder, says their names, then waits to die.
CHILD = """
import os, sys, time
from pathlib import Path
from cairn.tempfiles import scratch_dir, scratch_file
work = Path(sys.argv[1])
fd, upload = scratch_file(work, "upload-")
os.write(fd, b"x" * 1000)
os.close(fd)
stage = scratch_dir(work, "stage-")
(stage / "main.tex").write_bytes(b"y" * 500)
print(upload.name, stage.name, flush=True)
time.sleep(600)
"""


def _killed_owner(work: Path) -> tuple[int, list[str]]:
    """Run CHILD, kill it with SIGKILL once its scratch exists; its pid and the names."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(work)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    names = child.stdout.readline().split()
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    child.stdout.close()
    return child.pid, names


def _start_ticks(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    return int(stat[stat.rindex(b")") + 2 :].split()[19])


def test_scratch_names_carry_this_process(tmp_path: Path) -> None:
    fd, path = scratch_file(tmp_path / "work", "package-", suffix=".tar.gz")
    os.close(fd)
    folder = scratch_dir(tmp_path / "work", "stage-")
    assert path.name.startswith(f"package-{os.getpid()}-") and path.name.endswith(".tar.gz")
    assert folder.name.startswith(f"stage-{os.getpid()}-")
    assert find_leftovers(tmp_path / "work") == []
    assert remove_orphans(tmp_path / "work") == []
    assert path.exists() and folder.is_dir()
    with pytest.raises(ValueError, match="prefix"):
        scratch_file(tmp_path, "../escape-")


def test_a_killed_process_leaves_orphans_that_are_found_then_removed(tmp_path: Path) -> None:
    work = tmp_path / "work"
    pid, names = _killed_owner(work)
    fd, mine = scratch_file(work, "upload-")
    os.close(fd)
    (work / "notes.txt").write_text("not a scratch name")

    leftovers = {item.name: item for item in find_leftovers(work)}
    assert set(leftovers) == {*names, "notes.txt"}
    upload, stage = names
    assert (leftovers[upload].bytes, leftovers[stage].bytes) == (1000, 500)
    assert leftovers[upload].owner_pid == pid and leftovers[stage].owner_pid == pid
    assert leftovers["notes.txt"].owner_pid is None
    assert all(item.age_seconds >= 0 for item in leftovers.values())
    assert sorted(os.listdir(work)) == sorted([*names, "notes.txt", mine.name])  # found only

    assert remove_orphans(work, dry_run=True) == sorted(names)
    assert remove_orphans(work) == sorted(names)
    assert sorted(os.listdir(work)) == sorted(["notes.txt", mine.name])
    assert remove_orphans(tmp_path / "missing") == []


@pytest.mark.skipif(not HAS_PROC, reason="needs /proc to tell a reused process id")
def test_a_reused_process_id_does_not_keep_files_alive(tmp_path: Path) -> None:
    me, started = os.getpid(), _start_ticks(os.getpid())
    assert owner_alive(me, started)
    assert not owner_alive(me, started + 1)  # same id, another process
    reused = tmp_path / f"upload-{me}-{started + 1}-abcdef"
    reused.write_bytes(b"from a process that died; its id now names this one")
    live = tmp_path / f"upload-{me}-{started}-ghijkl"
    live.write_bytes(b"mine")
    assert [item.name for item in find_leftovers(tmp_path)] == [reused.name]
    assert remove_orphans(tmp_path) == [reused.name]
    assert live.exists()


def test_gc_grace_keeps_a_running_owner_and_takes_orphans_at_any_age(tmp_path: Path) -> None:
    work = tmp_path / "work"
    _, orphans = _killed_owner(work)
    folder = scratch_dir(work, "stage-")  # this process: running, however old
    then = time.time() - 7200
    os.utime(folder, (then, then))
    hour = timedelta(hours=1)
    assert remove_stale(work, older_than=hour) == sorted(orphans)
    assert os.listdir(work) == [folder.name]
