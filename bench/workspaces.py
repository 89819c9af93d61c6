"""Benchmark an upload through the HTTP API against ``tar -xzf`` + ``sha256sum`` of every file.

A real ``cairn serve`` process receives a ~200 MB ``.tar.gz`` of ~10,000 files (a mix of
compressible text and incompressible binary, in nested folders) into a new workspace: the
request is streamed to disk, unpacked, sanitized, type-checked, hashed and stored in the blob
store, and the summary answered. The baseline unpacks the same archive and hashes every file.
Peak RSS of the server process during the upload is reported too.
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import random
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import _common
import httpx
import psutil
from _common import MIB, best_alternating, detail, report, scratch_dir

_common.use_source_tree()

from cairn import client  # noqa: E402


def tex_lines(rng: random.Random) -> list[bytes]:
    """A pool of TeX-like lines over a 5,000-word vocabulary: compresses about 3 to 1."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(5000)]
    vocab += ["\\begin{equation}", "\\end{equation}", "\\cite{x}", "$x_i$", "\\ref{eq}"]
    return [
        (" ".join(rng.choices(vocab, k=rng.randint(4, 16))) + "\n").encode() for _ in range(50_000)
    ]


def make_archive(path: Path, *, files: int, total_bytes: int, shape: str = "mixed") -> None:
    rng = random.Random(7)
    size = total_bytes // files
    words = [b"alpha", b"beta", b"gamma", b"delta", b"theorem", b"proof", b"lemma", b"\n"]
    lines = tex_lines(rng) if shape == "text" else []
    with tarfile.open(path, "w:gz", compresslevel=6) as tar:
        for i in range(files):
            if shape == "text":  # a paper's sources: TeX text, one figure in twenty
                if i % 20 == 0:
                    data = os.urandom(size)
                    name = f"figures/fig{i:05d}.png"
                else:
                    data = b"".join(rng.choices(lines, k=size // 50 + 1))[:size]
                    name = f"sections/part{i % 30}/section{i:05d}.tex"
            elif i % 3 == 0:  # a third text, two thirds binary (figures, data)
                data = b" ".join(rng.choice(words) for _ in range(size // 6))[:size]
                name = f"section{i % 40}/notes{i:05d}.txt"
            else:
                data = os.urandom(size)
                name = f"data/part{i % 25}/sample{i:05d}.bin"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))


def start_server(root: Path) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    env = {**os.environ, "CAIRN_DATA_DIR": str(root / "data"), "XDG_CONFIG_HOME": str(root)}
    env.pop("CAIRN_DATABASE_URL", None)
    cli = [sys.executable, "-m", "cairn.cli.main"]
    admin = [*cli, "admin"]
    subprocess.run(
        [*admin, "create-org", "--name", "Bench"], env=env, check=True, capture_output=True
    )
    subprocess.run(
        [
            *admin,
            "create-user",
            "--email",
            "bench@example.org",
            "--password",
            "Bench-mark-2026!",
            "--org",
            "Bench",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    with socket_port() as port:
        url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [*cli, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return server, url, env
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("cairn serve did not start")


class socket_port:
    def __enter__(self) -> int:
        import socket

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        port: int = self._sock.getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


class PeakRss:
    """Samples a process's resident memory every 20 ms while running."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--total-mb", type=int, default=200, help="unpacked data in MiB")
    parser.add_argument("--files", type=int, default=10_000, help="number of files")
    parser.add_argument("--rounds", type=int, default=2, help="runs per side (best is kept)")
    parser.add_argument(
        "--shape",
        choices=("mixed", "text"),
        default="mixed",
        help="mixed: a third text, two thirds random binary; text: mostly TeX (issue #13 §8)",
    )
    parser.add_argument(
        "--archive",
        default=None,
        help="target archive of the upload (default: cairn's default, at most 20,000 files; "
        "use 'data' for --files 50000)",
    )
    args = parser.parse_args()

    # Nothing is deleted until the end: on ext4 without a journal, creating files soon after
    # deleting many costs ~0.4 ms each (the kernel checks recently freed inodes), which would
    # charge one side for the other's clean-up.
    with scratch_dir() as tmp:
        archive = tmp / "upload.tar.gz"
        make_archive(archive, files=args.files, total_bytes=args.total_mb * MIB, shape=args.shape)
        detail(
            f"{args.shape}: {args.files} files, {args.total_mb} MiB unpacked, "
            f"{archive.stat().st_size / MIB:.0f} MiB compressed"
        )
        rounds = itertools.count()
        peaks: list[int] = []
        idles: list[int] = []  # the server's RSS before the upload (issue #13: most of the peak)
        syncs: list[float] = []

        def cairn() -> float:
            # A fresh server and data folder per round, so no round dedupes against another.
            server, url, _ = start_server(tmp / f"cairn-{next(rounds)}")
            try:
                with (
                    client.login(
                        email="bench@example.org", password="Bench-mark-2026!", api_url=url
                    ) as me,
                    PeakRss(server.pid) as rss,
                ):
                    idles.append(psutil.Process(server.pid).memory_info().rss)
                    start = time.perf_counter()
                    workspace = me.workspaces.upload(archive, archive=args.archive)
                    seconds = time.perf_counter() - start
                peaks.append(rss.peak)
                assert workspace.file_count == args.files, workspace.findings[:5]
                return seconds
            finally:
                server.terminate()
                server.wait(timeout=600)  # shutdown waits for the package build

        def baseline() -> float:
            dest = tmp / f"untar-{next(rounds)}"
            dest.mkdir()
            start = time.perf_counter()
            subprocess.run(["tar", "-xzf", str(archive), "-C", str(dest)], check=True)
            subprocess.run(
                "find . -type f -print0 | xargs -0 sha256sum > /dev/null",
                shell=True,
                cwd=dest,
                check=True,
            )
            seconds = time.perf_counter() - start
            began = time.perf_counter()
            os.sync()  # what making the baseline as durable as cairn's blobs would add
            syncs.append(seconds + time.perf_counter() - began)
            return seconds

        times: dict[str, list[float]] = {"cairn": [], "baseline": []}

        def recorded(name: str, fn: Callable[[], float]) -> Callable[[], float]:
            def go() -> float:
                seconds = fn()
                times[name].append(seconds)
                return seconds

            return go

        best_cairn, best_baseline = best_alternating(
            recorded("cairn", cairn),
            recorded("baseline", baseline),
            rounds=args.rounds,
            settle=os.sync,
        )
        ratios = [c / b for c, b in zip(times["cairn"], times["baseline"], strict=True)]
        synced = [c / b for c, b in zip(times["cairn"], syncs, strict=True)]
        detail("per-round ratio: " + ", ".join(f"{r:.2f}" for r in ratios))
        detail("per-round ratio vs baseline + sync: " + ", ".join(f"{r:.2f}" for r in synced))
        detail(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        detail(
            f"baseline + sync (durable like cairn): {min(syncs):.2f}s, "
            f"ratio {best_cairn / min(syncs):.2f}"
        )
        detail(
            f"server peak RSS during upload {max(peaks) / MIB:.0f} MiB "
            f"(idle before it {min(idles) / MIB:.0f} to {max(idles) / MIB:.0f} MiB)"
        )
        report("workspaces", best_cairn, best_baseline)


if __name__ == "__main__":
    main()
