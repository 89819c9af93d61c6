"""XML database: XMark queries through cairn's server (in-process HTTP, the client's lite
answer) against the same queries in plain saxonche on the same document, in the same run.

Also: load to the persistent store against a plain Saxon parse, the first query after a
reopen (parsed from the stored blob, no re-load), and client navigation with a 10,000-object
node cache. Run: ``.venv/bin/python bench/xmldb.py [--factor 0.3] [--rounds 3] [--nodes N]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from _common import detail, report, scratch_dir, use_source_tree

use_source_tree()


JOINS = {"Q8": 0.25, "Q9": 0.25}  # the equality joins cairn answers through hash indexes


def plain(proc: object, doc: object, query: str) -> str:
    """The query in plain saxonche, the document as its context item, serialised as cairn's
    lite answer is."""
    from cairn.xmldb import _engine as engine

    xq = proc.new_xquery_processor()  # type: ignore[attr-defined]
    xq.set_context(xdm_item=doc)
    xq.set_query_content(query)
    return engine.serialize_sequence(xq.run_query_to_value())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--factor", type=float, default=0.3, help="Document size (1.0 ~ 33 MB).")
    parser.add_argument("--rounds", type=int, default=3, help="Best of this many runs.")
    parser.add_argument("--nodes", type=int, default=20_000, help="Nodes to navigate.")
    parser.add_argument("--queries", default="", help="Only these, e.g. Q8,Q9 (the joins).")
    parser.add_argument(
        "--plain-rounds", type=int, default=0, help="Plain saxonche runs (default --rounds)."
    )
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from cairn.accounts import service as accounts
    from cairn.api import create_app
    from cairn.client.xmldb import Connection, NodeCache, connect
    from cairn.config import Settings
    from cairn.db import migrate, session_scope
    from cairn.xmldb import _engine as engine
    from cairn.xmldb._xmark import QUERIES, for_document, generate

    text = generate(args.factor, seed=1)
    detail(f"document: XMark-like, factor {args.factor}, {len(text) / 1e6:.1f} MB")
    proc = engine.on_saxon_thread(engine.processor)

    with scratch_dir() as root:
        settings = Settings(
            data_dir=Path(root) / "data",
            database_url=f"sqlite:///{root}/cairn.db",
            max_request_bytes=1 << 30,
        )
        app = create_app(settings)
        migrate(app.state.engine)
        with session_scope(app.state.sessionmaker) as session:
            org = accounts.create_organisation(session, name="Bench Lab")
            user = accounts.create_user(
                session, email="bench@example.org", password="Bench-pass-2026"
            )
            accounts.add_member(session, user=user, organisation=org, privilege="manage")
        http = TestClient(app)
        con: Connection = connect(
            "http://testserver",
            "Bench Lab",
            "bench@example.org",
            "Bench-pass-2026",
            http_client=http,
        )

        start = time.perf_counter()
        con.load_document("auction", text)
        loaded = time.perf_counter() - start
        start = time.perf_counter()
        doc = engine.on_saxon_thread(lambda: proc.parse_xml(xml_text=text))
        parsed = time.perf_counter() - start
        detail(
            f"load to the store: cairn {loaded:.2f}s (parse check, blob, row), "
            f"saxonche parse {parsed:.2f}s"
        )

        statement = con.create_statement()
        start = time.perf_counter()
        statement.execute_query_lite(for_document(QUERIES["Q1"]))
        first = time.perf_counter() - start
        detail(f"first query after load (parses the stored blob): {first:.2f}s")
        del app.state.xmldb  # a reopen: sessions and parsed documents gone, the store kept
        con = Connection(con.client, "Bench Lab")
        statement = con.create_statement()
        start = time.perf_counter()
        statement.execute_query_lite(for_document(QUERIES["Q1"]))
        reopened = time.perf_counter() - start
        detail(f"reopen without re-load, first query: {reopened:.2f}s")

        cairn_total = base_total = 0.0
        wanted = [q for q in args.queries.split(",") if q] or list(QUERIES)
        for name, query in QUERIES.items():
            if name not in wanted:
                continue
            ours = theirs = float("inf")
            for round_ in range(args.rounds):
                start = time.perf_counter()
                got = statement.execute_query_lite(for_document(query))
                took = time.perf_counter() - start
                if round_ == 0 and name in JOINS:
                    detail(f"{name}: cairn first run (builds its join index) {took:.3f}s")
                ours = min(ours, took)
            for _ in range(args.plain_rounds or args.rounds):
                start = time.perf_counter()
                expected = engine.on_saxon_thread(lambda q=query: plain(proc, doc, q))
                theirs = min(theirs, time.perf_counter() - start)
            if got != expected:
                raise SystemExit(f"{name}: cairn's result differs from plain saxonche's")
            cairn_total += ours
            base_total += theirs
            detail(
                f"{name}: cairn {ours:.3f}s, saxonche {theirs:.3f}s, "
                f"ratio {ours / theirs:.2f} (results equal)"
                + (
                    f"; goal <= {JOINS[name]} s {'met' if ours <= JOINS[name] else 'MISSED'}"
                    if name in JOINS
                    else ""
                )
            )

        cache = NodeCache(max_objects=10_000)
        nav = Connection(con.client, "Bench Lab", cache=cache)
        start = time.perf_counter()
        seen = 0
        root_node = next(iter(nav.create_statement().execute_query('doc("auction")/site')))
        stack = [root_node.as_node()]
        while stack and seen < args.nodes:
            node = stack.pop()
            node.node_name()
            seen += 1
            kids = [c.as_node() for c in node.children()]
            stack.extend(reversed(kids))
        took = time.perf_counter() - start
        detail(
            f"navigation: {seen} nodes depth-first through children(), cache limit 10,000: "
            f"{seen / took:.0f} nodes/s; cache hits {cache.hits}, misses {cache.misses}, "
            f"evictions {cache.evictions}, {cache.bytes_fetched / 1e6:.1f} MB fetched"
        )
        nav.close()
        con.close()
        http.close()
    report("xmldb", cairn_total, base_total)


if __name__ == "__main__":
    main()
