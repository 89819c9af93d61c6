"""``cairn record --syscalls -- PROGRAM ARGS``: record any program and all its children by
tracing their file system calls with ``strace`` (``-f --seccomp-bpf``, a short list of calls,
successful ones only, every string hex-escaped so any path decodes exactly).

The trace is read live from a pipe while the program runs, so an input is hashed (and
staged) as soon as its ``open`` is seen; a program that rewrites an input within moments of
reading it may still leave the newer version recorded (the audit-hook mode has no such race).
This mode sees I/O that C code does itself (sqlite3, HDF5, netCDF, GDAL) and every child
process; it cannot see a file's content changing through an already open descriptor. An open
with ``O_CREAT`` counts as a write only (the file may not have existed before).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import uuid
from collections.abc import Sequence
from dataclasses import replace

from cairn.errors import Invalid
from cairn.provenance._draft import RunDraft, utcnow
from cairn.provenance._environment import environment
from cairn.provenance.capture import (
    Capture,
    CaptureOptions,
    archive_files,
    discard_staged,
    snapshot,
)
from cairn.provenance.recording import RecordResult, RunStore, _tags

__all__ = ["SYSTEM_ROOTS", "TRACED", "parse_line", "record_program"]

TRACED = (
    "open,openat,openat2,creat,rename,renameat,renameat2,unlink,unlinkat,"
    "execve,execveat,chdir,clone,clone3,fork,vfork"
)
SYSTEM_ROOTS = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/run", "/var/lib")
"""Skipped by default in this mode: every program reads its loader, libraries and locale."""

_LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)")
_STRING = re.compile(r'"((?:\\x[0-9a-f]{2})*)"')
_WRITE = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")


def _strings(args: str) -> list[str]:
    """Every string argument, decoded from strace's ``-xx`` hex as the kernel saw its bytes."""
    return [os.fsdecode(bytes.fromhex(m.replace("\\x", ""))) for m in _STRING.findall(args)]


def parse_line(line: str) -> tuple[int, str, list[str], str, int] | None:
    """``(pid, call, string args, raw args, result)`` for one completed successful call."""
    match = _LINE.match(line)
    if match is None or match.group(4) == "?":
        return None
    pid, call, args, result = match.groups()
    return int(pid), call, _strings(args), args, int(result)


class _Tracer:
    """Turns strace lines into the capture's used / written records, per process cwd."""

    def __init__(self, capture: Capture, cwd: str) -> None:
        self.capture = capture
        self.root_cwd = cwd
        self.cwds: dict[int, str] = {}
        self.executed: list[str] = []

    def _resolve(self, pid: int, path: str) -> str:
        return os.path.normpath(os.path.join(self.cwds.get(pid, self.root_cwd), path))

    def feed(self, line: str) -> None:
        parsed = parse_line(line)
        if parsed is None:
            return
        pid, call, strings, raw, result = parsed
        if result < 0:
            return
        capture = self.capture
        if call in ("clone", "clone3", "fork", "vfork"):
            if result > 0:
                self.cwds[result] = self.cwds.get(pid, self.root_cwd)
            return
        if not strings:
            return
        if call == "chdir":
            self.cwds[pid] = self._resolve(pid, strings[0])
            return
        if call in ("execve", "execveat"):
            path = self._resolve(pid, strings[0])
            if capture.options.wanted(path):
                self.executed.append(path)
            return
        relative = not strings[0].startswith("/")
        if call in ("openat", "openat2") and not raw.startswith("AT_FDCWD") and relative:
            return  # relative to a directory descriptor we do not follow
        path = self._resolve(pid, strings[0])
        if call in ("open", "openat", "openat2", "creat"):
            writes = call == "creat" or any(flag in raw for flag in _WRITE)
            if not writes:
                capture._event("open", (path, "r", 0))
            elif "O_RDWR" in raw and "O_CREAT" not in raw:  # an update of an existing file
                capture._event("open", (path, "r+", os.O_RDWR))
            else:
                capture._event("open", (path, "w", os.O_WRONLY))
        elif call.startswith("rename") and len(strings) >= 2:
            capture._event("os.rename", (path, self._resolve(pid, strings[1])))
        elif call.startswith("unlink"):
            capture._event("os.remove", (path,))


def _strace() -> str:
    found = shutil.which("strace")
    if found is None:
        raise Invalid(
            "--syscalls needs strace, which is not installed (apt install strace); "
            "without it record Python scripts with `cairn record SCRIPT.py`."
        )
    return found


def record_program(
    command: Sequence[str],
    *,
    tag: str | Sequence[str] = (),
    store: RunStore,
    options: CaptureOptions | None = None,
) -> RecordResult:
    """Run ``command`` under strace and record it and all its children as one run."""
    command = list(command)
    if command and command[0] == "--":
        command = list(command[1:])
    if not command:
        raise Invalid("nothing to record: give -- PROGRAM [ARGS]")
    program = shutil.which(command[0]) or command[0]
    if not os.path.exists(program):
        raise Invalid(f"no such program: {command[0]!r}")
    strace = _strace()
    base = options or CaptureOptions()  # copied: the caller's options stay as given
    stage = store.work_dir / f"record-{uuid.uuid4().hex}"
    stage.mkdir(parents=True, exist_ok=True)
    roots = [*base.excluded_roots, *SYSTEM_ROOTS, *store.excluded_roots, str(stage)]
    options = replace(base, excluded_roots=roots)
    capture = Capture(
        options, stage_dir=stage if options.archive else None, known=store.blobs.exists
    )
    program_path = os.path.abspath(program)
    script = snapshot(program_path, "execute", stage_dir=stage, max_archive_bytes=1 << 62)
    capture.used[program_path] = script
    draft = RunDraft(
        kind="program",
        script=script.path,
        script_sha256=script.sha256,
        arguments=list(command[1:]),
        cwd=os.getcwd(),
        tags=_tags(tag),
        env=environment(interpreter=program_path, version="unknown (traced program)"),
    )
    seq, run_id = store.start_run(draft)
    tracer = _Tracer(capture, os.getcwd())
    read_fd, write_fd = os.pipe()
    argv = [
        strace, "-f", "--seccomp-bpf", "-qq", "-xx", "-s", "65536", "-z",
        "-e", f"trace={TRACED}", "-o", f"/dev/fd/{write_fd}", "--", *command,
    ]  # fmt: skip
    try:
        process = subprocess.Popen(argv, pass_fds=(write_fd,))
    finally:
        os.close(write_fd)

    def pump() -> None:
        with os.fdopen(read_fd, "r", encoding="ascii", errors="replace") as lines:
            for line in lines:
                try:
                    tracer.feed(line)
                except Exception:  # a line we cannot read must not lose the run
                    continue

    reader = threading.Thread(target=pump, name="cairn-strace-reader", daemon=True)
    reader.start()
    forwarded = {}

    def forward(signum: int, _frame: object) -> None:
        process.send_signal(signum)

    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            forwarded[number] = signal.signal(number, forward)
    try:
        code = process.wait()
        reader.join()
    finally:
        for number, handler in forwarded.items():
            signal.signal(number, handler)
    for path in tracer.executed:
        if path not in capture.used and path != program_path:
            capture.used[path] = snapshot(
                path, "execute", stage_dir=capture.stage_dir,
                max_archive_bytes=options.max_archive_bytes,
            )  # fmt: skip
    used, generated = capture.stop()
    draft.used, draft.generated = used, generated
    draft.ended_at = utcnow()
    if code < 0:
        name = signal.Signals(-code).name
        draft.status, draft.exit_code, draft.error_message = (
            "killed",
            128 - code,
            f"killed by {name}",
        )
    elif code:
        draft.status, draft.exit_code = "error", code
        draft.error_message = f"exited with status {code}"
    else:
        draft.status, draft.exit_code = "ok", 0
    files = [*used, *generated]
    try:
        draft.archived = archive_files(store.blobs, files)
        store.save_run(seq, draft)
    finally:
        discard_staged(files)
        shutil.rmtree(stage, ignore_errors=True)
    return RecordResult(run_id, seq, draft.status, draft.exit_code or 0)
