"""Peak memory and time of a child process, measured the same way for cairn and its baseline.

A command forked straight from this process would inherit its RSS high-water mark (Linux keeps
it across exec), so every command runs under GNU time, which is small, and reports the peak of
its own child. A Python child may print one JSON line (``child_report``) with the seconds of
its work alone, leaving out interpreter start and imports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

GNU_TIME = "/usr/bin/time"


@dataclass(frozen=True)
class Measured:
    seconds: float  # what the child reported, else wall clock around the command
    peak: int  # peak RSS in bytes
    report: dict[str, float] = field(default_factory=dict)  # the child's JSON line, if any


def run_measured(cmd: Sequence[str | os.PathLike[str]], *, capture: bool = False) -> Measured:
    """Run ``cmd`` (output discarded unless ``capture``); fail loudly if it fails."""
    if shutil.which(GNU_TIME) is None:
        raise SystemExit(f"this benchmark needs GNU time at {GNU_TIME} (Debian package 'time')")
    with tempfile.TemporaryDirectory(prefix="cairn-bench-time-") as folder:
        out = Path(folder, "peak")
        start = time.perf_counter()
        done = subprocess.run(
            [GNU_TIME, "-f", "%M", "-o", str(out), *(os.fspath(c) for c in cmd)],
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            check=True,
        )
        wall = time.perf_counter() - start
        peak = int(out.read_text().split()[-1]) * 1024
    report: dict[str, float] = {}
    if capture:
        lines = done.stdout.decode().strip().splitlines()
        report = json.loads(lines[-1]) if lines else {}
    return Measured(report.get("seconds", wall), peak, report)


def own_peak() -> int:
    """This process's peak RSS so far, in bytes (``VmHWM``)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def child_report(seconds: float, idle_peak: int) -> None:
    """Print what a Python child measured itself: its work's seconds, its peak before the work."""
    print(json.dumps({"seconds": seconds, "idle_peak": idle_peak}), flush=True)
