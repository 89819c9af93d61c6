"""Memory bound: a large streamed put and read keep the process small (run in a subprocess)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
LIMIT_BYTES = 100 * 1024 * 1024

SCRIPT = textwrap.dedent(
    """
    import hashlib, resource, sys
    from cairn.blobs import LocalBlobStore

    CHUNK = 1 << 20
    CHUNKS = int(sys.argv[2])
    block = hashlib.sha256(b"seed").digest() * (CHUNK // 32)

    def generate():
        for i in range(CHUNKS):  # a fresh bytes object per chunk, never the whole blob
            yield i.to_bytes(8, "big") + block[8:]

    expected = hashlib.sha256()
    for chunk in generate():
        expected.update(chunk)

    store = LocalBlobStore(sys.argv[1])
    ref = store.put(generate())
    assert ref.sha256 == expected.hexdigest() and ref.size == CHUNKS * CHUNK, ref

    seen = 0
    with store.open(ref.sha256) as f:  # verified read of the whole blob, also bounded
        while data := f.read(CHUNK):
            seen += len(data)
    assert seen == ref.size

    # VmHWM is this process's own peak; ru_maxrss would include the parent's RSS at fork
    # time, since Linux carries it across exec.
    try:
        with open("/proc/self/status") as status:
            hwm = [line for line in status if line.startswith("VmHWM:")][0]
        print(int(hwm.split()[1]) * 1024)
    except OSError:
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    """
)


@pytest.mark.slow
def test_512_mib_streamed_put_stays_under_100_mb_rss(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "blobs"), "512"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    peak = int(result.stdout.strip())
    assert peak < LIMIT_BYTES, f"peak RSS {peak / 2**20:.1f} MiB"
