"""Benchmark the idle memory of ``cairn serve`` against a minimal FastAPI app under uvicorn.

Issue #13 §8 wants a 2 GiB upload to peak at ≤ 150 MiB server RSS, and the idle server is
most of that. A real ``cairn serve`` (SQLite, the archive worker running its idle loop) is
started, asked ``/healthz``, left idle for a few seconds, and its resident memory read; the
baseline is a one-route FastAPI app under the same uvicorn and interpreter (what any server
of this stack costs). ``--compare SRC`` also measures the server from another checkout's
``src`` (for example ``/work/main/src``), alternating with this one, for a same-run
before/after. Memory, not seconds, is measured: the result line's "s" figures are MiB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import _common
import httpx
import psutil
from _common import MIB, detail, scratch_dir

_common.use_source_tree()

from workspaces import socket_port, start_server  # noqa: E402

BASELINE_APP = """
import sys
import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def idle_rss(pid: int, *, settle: float) -> int:
    """The process's RSS after ``settle`` seconds idle (the archive worker loops every 2 s)."""
    time.sleep(settle)
    return int(psutil.Process(pid).memory_info().rss)


def cairn_idle(root: Path, *, settle: float, src: str | None = None) -> int:
    if src is not None:
        os.environ["PYTHONPATH"] = src
    try:
        server, _url, _env = start_server(root)
    finally:
        os.environ.pop("PYTHONPATH", None)
    try:
        return idle_rss(server.pid, settle=settle)
    finally:
        server.terminate()
        server.wait(timeout=60)


def baseline_idle(*, settle: float) -> int:
    with socket_port() as port:
        pass
    server = subprocess.Popen([sys.executable, "-c", BASELINE_APP, str(port)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        return idle_rss(server.pid, settle=settle)
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="runs per side")
    parser.add_argument("--settle", type=float, default=5.0, help="idle seconds before reading")
    parser.add_argument("--compare", default=None, help="another checkout's src to measure too")
    args = parser.parse_args()
    sides: dict[str, list[int]] = {"baseline": [], "cairn": []}
    if args.compare:
        sides["compare"] = []
    with scratch_dir() as tmp:
        for i in range(args.rounds):
            sides["baseline"].append(baseline_idle(settle=args.settle))
            sides["cairn"].append(cairn_idle(tmp / f"cairn-{i}", settle=args.settle))
            if args.compare:
                sides["compare"].append(
                    cairn_idle(tmp / f"compare-{i}", settle=args.settle, src=args.compare)
                )
            detail(
                f"round {i + 1}: "
                + ", ".join(f"{name} {values[-1] / MIB:.1f} MiB" for name, values in sides.items())
            )
    for name, values in sides.items():
        detail(f"{name}: idle RSS {min(values) / MIB:.1f} to {max(values) / MIB:.1f} MiB")
    detail(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    cairn, baseline = min(sides["cairn"]) / MIB, min(sides["baseline"]) / MIB
    if args.compare:
        detail(f"this tree vs --compare: {min(sides['cairn']) / min(sides['compare']):.2f}")
    print(
        f"serve_memory: cairn {cairn:.1f} MiB, baseline {baseline:.1f} MiB, "
        f"ratio {cairn / baseline:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
