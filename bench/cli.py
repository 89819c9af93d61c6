"""Benchmark CLI start-up: ``cairn --help`` and ``cairn whoami --help`` against ``python -c pass``.

Each round runs the baseline and both commands once, in turn, each in a fresh interpreter;
the medians are compared and the spread (fastest to slowest) shown. The result line reports
the slower command's median; the goal is to stay within 0.15 s of the baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

import _common
from _common import ROOT, detail, report

GOAL_SECONDS = 0.15

COMMANDS = {
    "baseline": [sys.executable, "-c", "pass"],
    "cairn --help": [sys.executable, "-m", "cairn.cli.main", "--help"],
    "cairn whoami --help": [sys.executable, "-m", "cairn.cli.main", "whoami", "--help"],
}


def _run(cmd: Sequence[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15, help="runs of each command")
    args = parser.parse_args()
    # The source tree, whether or not cairn is installed; no colours or pager.
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "NO_COLOR": "1", "COLUMNS": "80"}

    for cmd in COMMANDS.values():  # warm the page cache and the bytecode caches
        _run(cmd, env)
    seconds: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, cmd in COMMANDS.items():
            seconds[name].append(_run(cmd, env))

    medians = {name: statistics.median(times) for name, times in seconds.items()}
    baseline = medians["baseline"]
    for name, times in seconds.items():
        detail(
            f"{name}: median {medians[name]:.3f}s, spread {min(times):.3f}-{max(times):.3f}s"
            + ("" if name == "baseline" else f", {medians[name] - baseline:+.3f}s vs baseline")
            + f" ({args.rounds} rounds)"
        )
    slowest = max(medians[name] for name in COMMANDS if name != "baseline")
    verdict = "met" if slowest - baseline <= GOAL_SECONDS else "MISSED"
    detail(f"goal: within {GOAL_SECONDS:.2f}s of the baseline: {verdict}")
    report("cli", slowest, baseline)


if __name__ == "__main__":
    _common.use_source_tree()
    main()
