"""Benchmark the signed archive: containers from upload to archived (CAdES-A) against the raw
cryptography alone, plus search latency over many containers.

cairn: ``put_container`` (parse, verify with pyHanko, store blobs and rows in SQLite) then the
worker's enhancement (signature timestamp, certificates, archive-time-stamp-v3, re-verification,
the final transaction) for each 1 KB document with one RSA signature. Baseline, same run: per
signature only pyHanko's detached-CMS validation plus two timestamp tokens from the same TSA.
The goal is a ratio of at most 1.5. Each round alternates the two sides every ``--chunk``
containers; nothing is deleted between rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import _common
from _common import detail, report, scratch_dir

_common.use_source_tree()
sys.path.insert(0, str(_common.ROOT))

from pyhanko.sign.validation import generic_cms  # noqa: E402
from pyhanko_certvalidator import ValidationContext  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402
from tests.archive.pki import make_pki, pyhanko_sign  # noqa: E402

from cairn.accounts import service as accounts  # noqa: E402
from cairn.archive import service  # noqa: E402
from cairn.archive._worker import EnhanceContext, claim_next, enhance_claimed  # noqa: E402
from cairn.archive.counts import compact_counts  # noqa: E402
from cairn.archive.models import ArchiveContainer  # noqa: E402
from cairn.archive.settings import ArchiveSettings  # noqa: E402
from cairn.archive.statuses import ContainerStatus, SaveType  # noqa: E402
from cairn.archive.tsa import open_tsa, timestamp_token  # noqa: E402
from cairn.archive.verify import KEY_USAGE, load_trust_roots, parse_signature  # noqa: E402
from cairn.blobs import open_blob_store  # noqa: E402
from cairn.config import Settings  # noqa: E402
from cairn.db import UnitOfWork, make_engine, make_sessionmaker, migrate, utcnow  # noqa: E402


def _baseline(pairs: list[tuple[bytes, bytes]], roots: list, tsa) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for document, raw in pairs:
        signed = parse_signature(raw)
        context = ValidationContext(trust_roots=roots, allow_fetching=False)
        status = asyncio.run(
            generic_cms.async_validate_detached_cms(
                document, signed, signer_validation_context=context, key_usage_settings=KEY_USAGE
            )
        )
        assert status.bottom_line
        for _ in range(2):
            timestamp_token(os.urandom(32), tsa=tsa)
    return time.perf_counter() - start


class _Cairn:
    """cairn's side, set up once: every round adds its containers to the same database, blob
    store and log (nothing is deleted between rounds)."""

    def __init__(self, tmp: Path, roots_dir: Path) -> None:
        settings = Settings(data_dir=tmp / "data")
        self.engine = make_engine(settings)
        migrate(self.engine)
        self.uow = UnitOfWork(make_sessionmaker(self.engine))
        self.blobs = open_blob_store(settings.blob_url)
        self.caller, self.storage, self.system = _org_fixture(self.uow, "Bench")
        self.archive = ArchiveSettings(archive_trust_roots=roots_dir)
        self.context = EnhanceContext(self.blobs, self.archive, settings.data_dir)
        open_tsa(settings.data_dir)  # key generation is start-up, not per container
        self.document_path = tmp / "doc.bin"
        self.archived = 0

    def round(self, pairs: list[tuple[bytes, bytes]]) -> float:
        """Seconds to take ``pairs`` from upload to archived, one container at a time."""
        uow, blobs = self.uow, self.blobs
        start = time.perf_counter()
        for document, raw in pairs:
            self.document_path.write_bytes(document)
            put = service.PutRequest(
                name="bench",
                storage_id=self.storage,
                save_type=SaveType.PERMANENT,
                document=self.document_path,
                signatures=[raw],
            )
            container_id = service.put_container(
                uow, blobs, self.caller, put, settings=self.archive
            )
            assert claim_next(uow, worker_id="bench", container_id=container_id) == container_id
            assert enhance_claimed(uow, self.context, container_id, worker_id="bench")
        seconds = time.perf_counter() - start
        self.archived += len(pairs)
        with uow.transaction() as session:
            archived = session.query(ArchiveContainer).filter_by(status=4).count()
        assert archived == self.archived, archived
        return seconds

    def close(self) -> None:
        _search(
            self.uow, self.caller, self.storage, self.system, self.engine.url.get_backend_name()
        )
        self.engine.dispose()


def _org_fixture(uow: UnitOfWork, name: str):  # type: ignore[no-untyped-def]
    with uow.transaction() as session:
        org = accounts.create_organisation(session, name=name)
        storage = service.create_storage(session, organisation=org, name="Main").id
        system, _ = service.create_source_system(session, organisation=org, name=name)
        caller = service.Caller(
            readable=frozenset({org.id}), writable=frozenset({org.id}), source_system_id=system.id
        )
    return caller, storage, system.id


SEARCHES = [
    ("newest 10", {}),
    ("name substring", {"name": "voice 4242"}),
    ("status + storage", {"status": 4, "storage_ids": True}),
    ("isArchived=false", {"is_archived": False}),
    ("page 500", {"page": 500}),
]


def _search(uow: UnitOfWork, caller, storage: int, system: int, backend: str) -> float:  # type: ignore[no-untyped-def]
    """Insert ``CAIRN_BENCH_SEARCH_ROWS`` containers (plus as many in another organisation),
    spread over a year, mostly archived, then time each search's p50; returns the worst p50."""
    rows = int(os.environ.get("CAIRN_BENCH_SEARCH_ROWS", "100000"))
    other, other_storage, other_system = _org_fixture(uow, "Other organisation")
    now = utcnow()
    org = next(iter(caller.readable))
    for owner, owner_storage, owner_system, prefix in [
        (org, storage, system, "1"),
        (next(iter(other.readable)), other_storage, other_system, "2"),
    ]:
        for chunk in range(0, rows, 10000):
            batch = [
                {
                    "id": f"00000000-0000-4000-{prefix}000-{i:012d}",
                    "organisation_id": owner,
                    "storage_id": owner_storage,
                    "source_system_id": owner_system,
                    "name": f"Invoice {i}",
                    "save_type": 1 if i % 10 == 0 else 2,
                    "archive_until": now - timedelta(days=1) if i % 100 == 0 else None,
                    "status": int(
                        ContainerStatus.ERROR if i % 50 == 0 else ContainerStatus.ARCHIVED
                    ),
                    "use_archive_ca": False,
                    "document_hash": "0" * 64,
                    "document_size": 1024,
                    "document_type": "text/plain",
                    "created_at": now - timedelta(seconds=300 * (rows - i)),
                    "modified_at": now,
                }
                for i in range(chunk, min(rows, chunk + 10000))
            ]
            with uow.transaction() as session:
                session.execute(ArchiveContainer.__table__.insert(), batch)
    # The worker folds the counters' delta rows (one per inserted container) every round.
    folded = compact_counts(uow, threshold=0)
    detail(f"search counts: folded {folded} delta rows")
    # What autovacuum / a periodic ANALYZE does after a bulk load: statistics for the planner
    # and, on PostgreSQL, the visibility map that lets count(*) read the index alone.
    with uow.transaction() as session:
        engine = session.get_bind()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE" if backend == "postgresql" else "ANALYZE"))
    timings = {}
    for label, spec in SEARCHES:
        spec = dict(spec)
        page = int(spec.pop("page", 1))
        if spec.get("storage_ids"):
            spec["storage_ids"] = [storage]
        filters = service.SearchFilters(**spec)
        samples, plain = [], []
        for _ in range(21):  # alternating: the search, then the plain count(*) it replaces
            with uow.transaction() as session:
                start = time.perf_counter()
                found, total = service.search_containers(
                    session, caller, filters, page=page, page_size=10
                )
                samples.append(time.perf_counter() - start)
            with uow.transaction() as session:
                conditions = service._conditions(caller, filters, now, backend)
                start = time.perf_counter()
                counted = session.scalar(
                    select(func.count()).select_from(ArchiveContainer).where(*conditions)
                )
                plain.append(time.perf_counter() - start)
        assert found and total == counted, (label, total, counted)
        timings[label] = (
            statistics.median(samples) * 1000,
            min(samples) * 1000,
            max(samples) * 1000,
            statistics.median(plain) * 1000,
        )
    shown = "; ".join(
        f"{k} {p50:.1f} ms (min {lo:.1f}, max {hi:.1f}; plain count(*) alone {c:.1f} ms)"
        for k, (p50, lo, hi, c) in timings.items()
    )
    detail(
        f"search over {rows} containers (+{rows} in another organisation) on {backend}, "
        f"p50: {shown} (goal < 20 ms)"
    )
    return max(p50 for p50, _, _, _ in timings.values())


def _log_proofs(uow: UnitOfWork, caller, backend: str) -> None:  # type: ignore[no-untyped-def]
    """Inclusion proofs on a ``CAIRN_BENCH_LOG_LEAVES``-leaf log (default 1,000,000): the
    nodes are computed in memory with the same ``merkle`` functions appends use and bulk
    inserted; then ``log.inclusion_proof`` (one indexed query of ~40 nodes, the hashing) is
    timed for random leaves, and the same proof from an in-memory dict as the floor."""
    import random

    from cairn.archive import log, merkle
    from cairn.archive.models import ArchiveLogHead, ArchiveLogNode

    leaves = int(os.environ.get("CAIRN_BENCH_LOG_LEAVES", "1000000"))
    org = next(iter(caller.readable))
    nodes: dict[merkle.Key, bytes] = {}
    for index in range(leaves):
        siblings = {key: nodes[key] for key in merkle.left_siblings(index)}
        leaf = merkle.leaf_hash(b'{"bench":%d}' % index)
        nodes.update(merkle.appended_nodes(index, leaf, siblings))
    rows = [
        {"organisation_id": org, "node": log.node_key(key), "hash": digest}
        for key, digest in nodes.items()
    ]
    for chunk in range(0, len(rows), 50000):
        with uow.transaction() as session:
            session.execute(ArchiveLogNode.__table__.insert(), rows[chunk : chunk + 50000])
    with uow.transaction() as session:
        session.execute(
            ArchiveLogHead.__table__.insert(), [{"organisation_id": org, "size": leaves}]
        )
    picks = [random.randrange(leaves) for _ in range(201)]
    samples, floor = [], []
    with uow.read() as session:
        root = log.inclusion_proof(session, org, 0).root_hash
        for index in picks:
            start = time.perf_counter()
            proof = log.inclusion_proof(session, org, index, leaves)
            samples.append(time.perf_counter() - start)
            leaf = nodes[(0, index)]
            assert merkle.verify_inclusion(leaf, index, leaves, proof.hashes, root)
    for index in picks:
        start = time.perf_counter()
        ranges = merkle.inclusion_ranges(index, leaves)
        [merkle.range_hash(a, b, nodes) for a, b in ranges]
        floor.append(time.perf_counter() - start)
    ms = [s * 1000 for s in samples]
    detail(
        f"inclusion proof on a {leaves:,}-leaf log ({len(rows):,} stored nodes) on {backend}: "
        f"p50 {statistics.median(ms):.3f} ms (min {min(ms):.3f}, max {max(ms):.3f}); "
        f"in-memory floor p50 {statistics.median(floor) * 1000:.3f} ms (goal < 1 ms)"
    )


def _search_only(tmp: Path, database_url: str | None, *, log_only: bool = False) -> None:
    """Only the search measurement (or only the log's), on SQLite or (``--database-url``)
    PostgreSQL."""
    schema = None
    if database_url and database_url.startswith("postgresql"):
        schema = f"cairn_bench_{os.getpid()}"
        admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        database_url = f"{database_url}?options=-csearch_path%3D{schema}"
    try:
        settings = Settings(data_dir=tmp / "data", database_url=database_url or "")
        engine = make_engine(settings)
        migrate(engine)
        uow = UnitOfWork(make_sessionmaker(engine))
        caller, storage, system = _org_fixture(uow, "Bench")
        if log_only:
            _log_proofs(uow, caller, engine.url.get_backend_name())
        else:
            _search(uow, caller, storage, system, engine.url.get_backend_name())
        engine.dispose()
    finally:
        if schema:
            with admin.connect() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--containers", type=int, default=1000, help="per round")
    parser.add_argument("--rounds", type=int, default=3, help="cairn and baseline, alternating")
    parser.add_argument("--chunk", type=int, default=25, help="containers per alternation")
    parser.add_argument("--search-only", action="store_true", help="measure search alone")
    parser.add_argument("--log-only", action="store_true", help="measure log proofs alone")
    parser.add_argument("--database-url", help="for --search-only / --log-only: e.g. PostgreSQL")
    args = parser.parse_args()
    with scratch_dir() as tmp:
        if args.search_only or args.log_only:
            _search_only(tmp, args.database_url, log_only=args.log_only)
            return
        pki = make_pki(tmp / "pki")
        roots = load_trust_roots(pki.roots)
        tsa = open_tsa(tmp / "baseline-tsa")
        cairn = _Cairn(tmp, pki.roots)
        n = args.containers
        ratios, cairn_s, baseline_s = [], [], []
        for number in range(1, args.rounds + 1):
            # Fresh signatures each round: a second upload of the same bytes would be deduped.
            pairs = []
            for _ in range(n):
                document = os.urandom(1024)
                pairs.append((document, pyhanko_sign(pki.rsa_signer, document)))
            load = os.getloadavg()[0]
            # Alternating in chunks within the round, so both sides see the same machine even
            # when the other engineers' load changes during it.
            c = b = 0.0
            for at in range(0, n, args.chunk):
                c += cairn.round(pairs[at : at + args.chunk])
                b += _baseline(pairs[at : at + args.chunk], roots, tsa)
            cairn_s.append(c)
            baseline_s.append(b)
            ratios.append(c / b)
            detail(
                f"round {number}: cairn {n / c:.1f}/s, raw operations {n / b:.1f}/s, "
                f"ratio {c / b:.2f}; load (1 min) {load:.2f} -> {os.getloadavg()[0]:.2f}"
            )
        cairn.close()
        detail(
            f"{n} containers x {args.rounds} rounds: ratio median {statistics.median(ratios):.2f} "
            f"(min {min(ratios):.2f}, max {max(ratios):.2f}) (goal: ratio <= 1.5)"
        )
        detail("inclusion proof on a 1,000,000-leaf log: see --log-only")
        report("archive", statistics.median(cairn_s), statistics.median(baseline_s))


if __name__ == "__main__":
    main()
