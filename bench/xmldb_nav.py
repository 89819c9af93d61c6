"""XML database: per-statement overhead, load and reopen, and client navigation at scale,
through a real ``cairn serve`` in another process (issue #18, "overhead and navigation").

- The simple XMark queries (Q1, Q2, Q5, Q14, Q19, Q20) through the server over HTTP (the
  client's lite answer), warm, against the same query text in plain saxonche on the same
  document in this process, best of ``--rounds``, the results compared.
- Load to the persistent store (the client's upload: HTTP, parse check, blob, row) against a
  plain Saxon parse; "reopen": the server process restarted (sessions and parsed trees gone,
  nothing re-loaded), the time to its first answer on the document.
- Navigation: a client in its own process walks ``--nodes`` nodes depth first through
  ``children()`` with a 10,000-object cache, reporting nodes per second and its peak RSS (GNU
  time, see ``_peak``).

Run: ``.venv/bin/python bench/xmldb_nav.py [--factor 1.75] [--rounds 5] [--nodes 1000000]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from _common import detail, report, scratch_dir, use_source_tree
from _peak import own_peak, run_measured

from xmldb import plain  # the same baseline as bench/xmldb.py

use_source_tree()

SIMPLE = ("Q1", "Q2", "Q5", "Q14", "Q19", "Q20")
EMAIL, PASSWORD, ORG = "bench@example.org", "Bench-pass-2026", "Bench Lab"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def serving(root: Path, **settings: str) -> Iterator[str]:
    """A real ``cairn serve`` on ``root``'s data, in its own process, until the block ends;
    ``settings`` as ``CAIRN_*`` variables (``xml_preload="true"``)."""
    import httpx

    port = _free_port()
    env = {
        **os.environ,
        "CAIRN_DATA_DIR": str(root / "data"),
        "CAIRN_MAX_REQUEST_BYTES": str(1 << 30),
        "XDG_CONFIG_HOME": str(root / "config"),
        "CAIRN_CONFIG": str(root / "cairn.toml"),
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src"),
        **{f"CAIRN_{name.upper()}": value for name, value in settings.items()},
    }
    env.pop("CAIRN_DATABASE_URL", None)
    env.pop("CAIRN_BLOB_URL", None)
    with (root / "server.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cairn.cli.main", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"cairn serve did not start, see {root / 'server.log'}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def prepare_store(root: Path) -> None:
    """The database, an organisation and its member, before the server starts."""
    from cairn.accounts import service as accounts
    from cairn.api import create_app
    from cairn.config import Settings
    from cairn.db import migrate, session_scope

    app = create_app(Settings(data_dir=root / "data"))
    migrate(app.state.engine)
    with session_scope(app.state.sessionmaker) as session:
        org = accounts.create_organisation(session, name=ORG)
        user = accounts.create_user(session, email=EMAIL, password=PASSWORD)
        accounts.add_member(session, user=user, organisation=org, privilege="manage")
    app.state.engine.dispose()


def walk(url: str, nodes: int, portion: int) -> None:
    """The client process: depth first through children() from ``doc("auction")/site``."""
    from cairn.client.xmldb import NodeCache, connect

    cache = NodeCache(max_objects=10_000)
    idle = own_peak()
    with connect(url, ORG, EMAIL, PASSWORD, cache=cache, portion=portion) as con:
        start = time.perf_counter()
        root = next(iter(con.create_statement().execute_query('doc("auction")/site')))
        stack = [root.as_node()]
        root.as_node().node_kind()
        first = time.perf_counter() - start  # the query and the first node record
        seen = 0
        while stack and seen < nodes:
            node = stack.pop()
            node.node_kind()
            node.node_name()
            seen += 1
            stack.extend(reversed([c.as_node() for c in node.children()]))
            assert len(cache) <= 10_000
        took = time.perf_counter() - start
    # child_report's line, with the walk's counters beside its seconds and idle peak
    counts = {"nodes": seen, "hits": cache.hits, "misses": cache.misses}
    counts |= {"evictions": cache.evictions, "fetched": cache.bytes_fetched}
    print(json.dumps({"seconds": took, "first": first, "idle_peak": idle, **counts}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--factor", type=float, default=1.75, help="1.0 is about 33 MB.")
    parser.add_argument("--rounds", type=int, default=5, help="Best of this many runs.")
    parser.add_argument("--nodes", type=int, default=1_000_000, help="Nodes to walk.")
    parser.add_argument("--portion", type=int, default=256 << 10, help="Walk's portion, bytes.")
    parser.add_argument("--walk", metavar="URL", help=argparse.SUPPRESS)  # the client process
    args = parser.parse_args()
    if args.walk:
        walk(args.walk, args.nodes, args.portion)
        return

    from cairn.client.xmldb import connect
    from cairn.xmldb import _engine as engine
    from cairn.xmldb._xmark import QUERIES, for_document, generate

    text = generate(args.factor, seed=1)
    detail(f"document: XMark-like, factor {args.factor}, {len(text) / 1e6:.1f} MB")
    proc = engine.on_saxon_thread(engine.processor)
    with scratch_dir() as root:
        prepare_store(root)
        with serving(root) as url, connect(url, ORG, EMAIL, PASSWORD) as con:
            start = time.perf_counter()
            con.load_document("auction", text)
            loaded = time.perf_counter() - start
            start = time.perf_counter()
            doc = engine.on_saxon_thread(lambda: proc.parse_xml(xml_text=text))
            parsed = time.perf_counter() - start
            detail(
                f"load to the store: cairn {loaded:.2f}s (upload, parse check, blob, row), "
                f"saxonche parse {parsed:.2f}s"
            )
            statement = con.create_statement()
            start = time.perf_counter()
            statement.execute_query_lite(for_document(QUERIES["Q1"]))
            detail(f"first query after load: {time.perf_counter() - start:.2f}s")
            start = time.perf_counter()
            site = next(iter(statement.execute_query('doc("auction")/site'))).as_node()
            site.node_kind()  # waits for the node table, built since the load's commit
            detail(
                f"first node record after load (its node table): {time.perf_counter() - start:.2f}s"
            )
        # Reopen with the preload (Settings.xml_preload): the parse starts with the server.
        # Timed twice: a client that asks at once (it waits for the parse in flight), and one
        # that asks after the parse had time to end (twice the parse measured above, + 1 s).
        for wait in (0.0, 2 * parsed + 1):
            launched = time.perf_counter()
            with serving(root, xml_preload="true") as url:
                up = time.perf_counter()
                time.sleep(wait)
                with connect(url, ORG, EMAIL, PASSWORD) as con:
                    start = time.perf_counter()
                    con.create_statement().execute_query_lite(for_document(QUERIES["Q1"]))
                    end = time.perf_counter()
            detail(
                f"reopen with preload, asked {wait:.1f}s after the server answered: first query "
                f"{end - start:.2f}s (server start to answer {end - launched - wait:.2f}s, "
                f"of it {up - launched:.2f}s until the server answered)"
            )
        launched = time.perf_counter()
        with serving(root) as url:
            up = time.perf_counter()
            with connect(url, ORG, EMAIL, PASSWORD) as con:
                statement = con.create_statement()
                start = time.perf_counter()
                statement.execute_query_lite(for_document(QUERIES["Q1"]))
                end = time.perf_counter()
                detail(
                    f"reopen (server restarted, nothing re-loaded), first query: "
                    f"{end - start:.2f}s (server start to answer {end - launched:.2f}s, of it "
                    f"{up - launched:.2f}s until the server answered)"
                )
                cairn_total = base_total = 0.0
                for name in SIMPLE:
                    query = QUERIES[name]
                    ours = theirs = float("inf")
                    for _ in range(args.rounds):
                        start = time.perf_counter()
                        got = statement.execute_query_lite(for_document(query))
                        ours = min(ours, time.perf_counter() - start)
                        start = time.perf_counter()
                        expected = engine.on_saxon_thread(lambda q=query: plain(proc, doc, q))
                        theirs = min(theirs, time.perf_counter() - start)
                    if got != expected:
                        raise SystemExit(f"{name}: cairn's result differs from plain saxonche's")
                    cairn_total += ours
                    base_total += theirs
                    detail(
                        f"{name}: cairn {ours * 1000:.1f} ms, saxonche {theirs * 1000:.1f} ms, "
                        f"ratio {ours / theirs:.2f} (results equal)"
                    )
                client = [sys.executable, __file__, "--walk", url, "--nodes", str(args.nodes)]
                measured = run_measured([*client, "--portion", str(args.portion)], capture=True)
        counts = measured.report
        detail(
            f"navigation in its own process: {counts['nodes']:.0f} nodes depth first through "
            f"children(), cache limit 10,000, portion {args.portion >> 10} KiB: "
            f"{counts['nodes'] / measured.seconds:.0f} nodes/s, "
            f"client peak RSS {measured.peak / 2**20:.1f} MiB "
            f"(idle {counts['idle_peak'] / 2**20:.1f} MiB); cache hits {counts['hits']:.0f}, "
            f"misses {counts['misses']:.0f}, evictions {counts['evictions']:.0f}, "
            f"{counts['fetched'] / 1e6:.0f} MB fetched; the query and first record took "
            f"{counts['first']:.2f}s (the node table read back, or built)"
        )
    report("xmldb_nav", cairn_total, base_total)


if __name__ == "__main__":
    main()
