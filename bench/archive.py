"""Benchmark the signed archive: containers from upload to archived (CAdES-A) against the raw
cryptography alone, plus search latency over many containers.

cairn: ``put_container`` (parse, verify with pyHanko, store blobs and rows in SQLite) then the
worker's enhancement (signature timestamp, certificates, archive-time-stamp-v3, re-verification,
the final transaction) for each 1 KB document with one RSA signature. Baseline, same run: per
signature only pyHanko's detached-CMS validation plus two timestamp tokens from the same TSA.
The goal is a ratio of at most 1.5.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import _common
from _common import detail, report, scratch_dir

_common.use_source_tree()
sys.path.insert(0, str(_common.ROOT))

from pyhanko.sign.validation import generic_cms  # noqa: E402
from pyhanko_certvalidator import ValidationContext  # noqa: E402
from tests.archive.pki import make_pki, pyhanko_sign  # noqa: E402

from cairn.accounts import service as accounts  # noqa: E402
from cairn.archive import service  # noqa: E402
from cairn.archive._worker import EnhanceContext, claim_next, enhance_claimed  # noqa: E402
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


def _cairn(tmp: Path, pairs: list[tuple[bytes, bytes]], roots_dir: Path) -> float:
    settings = Settings(data_dir=tmp / "data")
    engine = make_engine(settings)
    migrate(engine)
    uow = UnitOfWork(make_sessionmaker(engine))
    blobs = open_blob_store(settings.blob_url)
    with uow.transaction() as session:
        org = accounts.create_organisation(session, name="Bench")
        storage = service.create_storage(session, organisation=org, name="Main").id
        system, _ = service.create_source_system(session, organisation=org, name="Bench")
        caller = service.Caller(
            readable=frozenset({org.id}), writable=frozenset({org.id}), source_system_id=system.id
        )
    archive = ArchiveSettings(archive_trust_roots=roots_dir)
    context = EnhanceContext(blobs, archive, settings.data_dir)
    open_tsa(settings.data_dir)  # key generation is start-up, not per container
    document_path = tmp / "doc.bin"
    start = time.perf_counter()
    for document, raw in pairs:
        document_path.write_bytes(document)
        put = service.PutRequest(
            name="bench",
            storage_id=storage,
            save_type=SaveType.PERMANENT,
            document=document_path,
            signatures=[raw],
        )
        container_id = service.put_container(uow, blobs, caller, put, settings=archive)
        assert claim_next(uow, worker_id="bench", container_id=container_id) == container_id
        assert enhance_claimed(uow, context, container_id, worker_id="bench")
    seconds = time.perf_counter() - start
    with uow.transaction() as session:
        archived = session.query(ArchiveContainer).filter_by(status=4).count()
    assert archived == len(pairs), archived
    _search(uow, caller, storage, system.id, engine.url.get_backend_name())
    engine.dispose()
    return seconds


def _search(uow: UnitOfWork, caller, storage: int, system: int, backend: str, n: int = 0) -> None:  # type: ignore[no-untyped-def]
    rows = int(os.environ.get("CAIRN_BENCH_SEARCH_ROWS", "100000"))
    now = utcnow()
    with uow.transaction() as session:
        batch = [
            {
                "id": f"00000000-0000-4000-8000-{i:012d}",
                "organisation_id": next(iter(caller.readable)),
                "storage_id": storage,
                "source_system_id": system,
                "name": f"Invoice {i}",
                "save_type": 2,
                "status": int(ContainerStatus.ARCHIVED),
                "use_archive_ca": False,
                "document_hash": "0" * 64,
                "document_size": 1024,
                "document_type": "text/plain",
                "created_at": now,
                "modified_at": now,
            }
            for i in range(rows)
        ]
        session.execute(ArchiveContainer.__table__.insert(), batch)
    timings = {}
    for label, filters in [
        ("newest 10", service.SearchFilters()),
        ("name substring", service.SearchFilters(name="voice 4242")),
        ("status + storage", service.SearchFilters(status=4, storage_ids=[storage])),
    ]:
        samples = []
        for _ in range(21):
            with uow.transaction() as session:
                start = time.perf_counter()
                service.search_containers(session, caller, filters, page=1, page_size=10)
                samples.append(time.perf_counter() - start)
        timings[label] = statistics.median(samples) * 1000
    shown = ", ".join(f"{k} {v:.1f} ms" for k, v in timings.items())
    detail(f"search over {rows} containers on {backend}, p50: {shown} (goal < 20 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--containers", type=int, default=1000)
    args = parser.parse_args()
    with scratch_dir() as tmp:
        pki = make_pki(tmp / "pki")
        roots = load_trust_roots(pki.roots)
        pairs = []
        for _ in range(args.containers):
            document = os.urandom(1024)
            pairs.append((document, pyhanko_sign(pki.rsa_signer, document)))
        tsa = open_tsa(tmp / "baseline-tsa")
        baseline = _baseline(pairs, roots, tsa)
        cairn = _cairn(tmp, pairs, pki.roots)
        detail(
            f"{args.containers} containers: cairn {args.containers / cairn:.1f}/s, "
            f"raw operations {args.containers / baseline:.1f}/s (goal: ratio <= 1.5)"
        )
        detail("inclusion proof on a 1,000,000-leaf log: not measured (log not built yet)")
        report("archive", cairn, baseline)


if __name__ == "__main__":
    main()
