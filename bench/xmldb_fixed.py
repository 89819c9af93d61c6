"""XML database: the fixed cost of one statement over HTTP (issue #18, simple queries goal).

A real ``cairn serve`` in another process and a small XMark-like document (factor 0.05), so
that the query itself costs well under a millisecond: ``/healthz`` (HTTP alone), an
authenticated no-op (``GET`` of the session: HTTP and authentication), and XMark Q1 and Q5
through the client's lite answer, against the same queries in plain saxonche in this process.
Minimum and median of ``--n`` runs each. ``--root`` serves another checkout's ``src`` (e.g. an
earlier commit's ``src`` and ``bench``, from ``git archive``) for a before/after comparison.

Run: ``.venv/bin/python bench/xmldb_fixed.py [--n 300] [--root DIR]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path


def _timed(n: int, fn: Callable[[], object]) -> tuple[float, float]:
    runs = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return min(runs), statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300, help="Runs of each request.")
    parser.add_argument("--factor", type=float, default=0.05, help="Document size.")
    parser.add_argument("--root", type=Path, help="Serve this checkout's src (default: this).")
    args = parser.parse_args()
    # The other checkout's bench helpers import and serve its own src (``use_source_tree``).
    checkout = args.root.resolve() if args.root else Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(checkout / "bench"))

    import httpx
    from _common import detail, report, scratch_dir
    from xmldb_nav import EMAIL, ORG, PASSWORD, prepare_store, serving

    from cairn.client.xmldb import connect
    from cairn.xmldb import _engine as engine
    from cairn.xmldb._xmark import QUERIES, for_document, generate
    from xmldb import plain

    text = generate(args.factor, seed=1)
    proc = engine.on_saxon_thread(engine.processor)
    doc = engine.on_saxon_thread(lambda: proc.parse_xml(xml_text=text))
    import cairn

    detail(f"cairn from {Path(cairn.__file__).parent}; document {len(text) / 1e6:.1f} MB")
    detail(f"load average at start {os.getloadavg()[0]:.1f}")
    with scratch_dir() as root:
        prepare_store(root)
        with serving(root) as url, connect(url, ORG, EMAIL, PASSWORD) as con, httpx.Client() as raw:
            con.load_document("auction", text)
            statement = con.create_statement()
            for label, fn in (
                ("healthz (HTTP alone)", lambda: raw.get(url + "/healthz")),
                ("GET session (HTTP + authentication)", lambda: con._get("")),
            ):
                low, mid = _timed(args.n, fn)
                detail(f"{label}: min {low * 1000:.2f} ms, median {mid * 1000:.2f} ms")
            ours = theirs = 0.0
            for name in ("Q1", "Q5"):
                query = QUERIES[name]
                got = statement.execute_query_lite(for_document(query))
                if got != engine.on_saxon_thread(lambda q=query: plain(proc, doc, q)):
                    raise SystemExit(f"{name}: cairn's result differs from plain saxonche's")
                low, mid = _timed(
                    args.n, lambda q=query: statement.execute_query_lite(for_document(q))
                )
                base, base_mid = _timed(
                    args.n, lambda q=query: engine.on_saxon_thread(lambda: plain(proc, doc, q))
                )
                ours, theirs = ours + low, theirs + base
                detail(
                    f"{name}: cairn min {low * 1000:.2f} ms (median {mid * 1000:.2f}), saxonche "
                    f"min {base * 1000:.2f} ms (median {base_mid * 1000:.2f}); fixed cost "
                    f"{(low - base) * 1000:.2f} ms"
                )
    detail(f"load average at end {os.getloadavg()[0]:.1f}")
    report("xmldb_fixed", ours, theirs)


if __name__ == "__main__":
    main()
