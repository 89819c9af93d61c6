"""The transparency log: every container event is a leaf of its organisation's append-only
RFC 9162 Merkle tree, appended in the event's own transaction.

One log per organisation, so a proof never carries another organisation's hashes and a tree
size never counts their events. The leaf input is the event as canonical JSON (kept on the
event row, so an export can ship it byte for byte). Appending takes the next index with one
``UPDATE archive_log_heads ... RETURNING``: on PostgreSQL the row lock makes a concurrent
append wait for the commit, on SQLite there is one writer; either way indexes are dense and
each complete perfect subtree is stored once (``cairn.archive.merkle``). Record events last in
a transaction that also locks containers, so the head's lock is always taken after them.

A signed tree head is the canonical JSON ``{organisation, tree_size, root_hash, timestamp}``
signed by cairn's key (the TSA's RSA key, PKCS#1 v1.5 with SHA-256) and timestamped by an RFC
3161 token over its SHA-256 (cairn's TSA or ``CAIRN_TSA_URL``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cairn.archive import merkle
from cairn.archive.errors import UnusableInput
from cairn.archive.models import ArchiveContainer, ArchiveEvent, ArchiveLogHead, ArchiveLogNode
from cairn.db import utcnow

if TYPE_CHECKING:
    from asn1crypto import x509 as asn1_x509  # type: ignore[import-untyped]

    from cairn.archive.tsa import Tsa

# Signing and checking tree heads import cryptography, asn1crypto and pyHanko inside the
# functions: every request that records an event imports this module, and those libraries
# cost the idle server ~50 MiB (issue #13, RSS goal).

__all__ = [
    "LogProof",
    "check_tree_head",
    "consistency_proof",
    "inclusion_proof",
    "node_key",
    "record_event",
    "signed_tree_head",
    "tree_size",
]


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _next_index(session: Session, organisation_id: str) -> int:
    """Reserve the next leaf index: one UPDATE of the head; the head row is created (once per
    organisation, concurrent creators tolerated) only when that UPDATE finds none."""
    bump = (
        update(ArchiveLogHead)
        .where(ArchiveLogHead.organisation_id == organisation_id)
        .values(size=ArchiveLogHead.size + 1)
        .returning(ArchiveLogHead.size)
        .execution_options(synchronize_session=False)
    )
    size = session.execute(bump).scalar_one_or_none()
    if size is None:
        dialect = session.get_bind().dialect.name
        make_insert = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(
            make_insert(ArchiveLogHead)
            .values(organisation_id=organisation_id, size=0)
            .on_conflict_do_nothing(index_elements=["organisation_id"])
        )
        size = session.execute(bump).scalar_one()
    return int(size) - 1


def node_key(key: merkle.Key) -> int:
    """The ``archive_log_nodes.node`` of a subtree: ``level << 56 | position``."""
    level, position = key
    return level << 56 | position


def _nodes(
    session: Session, organisation_id: str, keys: set[merkle.Key]
) -> dict[merkle.Key, bytes]:
    if not keys:
        return {}
    wanted = {node_key(key): key for key in keys}
    rows = session.execute(
        select(ArchiveLogNode.node, ArchiveLogNode.hash).where(
            ArchiveLogNode.organisation_id == organisation_id,
            ArchiveLogNode.node.in_(sorted(wanted)),
        )
    )
    found = {wanted[node]: bytes(digest) for node, digest in rows}
    if len(found) != len(keys):
        raise RuntimeError(f"The transparency log of {organisation_id} is missing nodes.")
    return found


def record_event(
    session: Session,
    container: ArchiveContainer,
    kind: str,
    detail: str | None = None,
    *,
    at: datetime | None = None,
) -> ArchiveEvent:
    """Add an event to the container's history and append it to the organisation's log."""
    at = at or utcnow()
    organisation_id = container.organisation_id
    index = _next_index(session, organisation_id)
    entry = _canonical(
        {
            "at": at.isoformat(),
            "container": container.id,
            "detail": detail,
            "index": index,
            "kind": kind,
            "organisation": organisation_id,
        }
    )
    siblings = _nodes(session, organisation_id, set(merkle.left_siblings(index)))
    nodes = merkle.appended_nodes(index, merkle.leaf_hash(entry), siblings)
    session.execute(
        insert(ArchiveLogNode),
        [
            {"organisation_id": organisation_id, "node": node_key(key), "hash": h}
            for key, h in nodes.items()
        ],
    )
    event = ArchiveEvent(
        container_id=container.id,
        kind=kind,
        detail=detail,
        at=at,
        log_index=index,
        log_entry=entry.decode(),
    )
    session.add(event)
    return event


def tree_size(session: Session, organisation_id: str) -> int:
    return int(
        session.scalar(
            select(ArchiveLogHead.size).where(ArchiveLogHead.organisation_id == organisation_id)
        )
        or 0
    )


def _root(session: Session, organisation_id: str, size: int) -> bytes:
    if size == 0:
        return hashlib.sha256(b"").digest()  # RFC 9162: the empty tree's hash
    nodes = _nodes(session, organisation_id, merkle.keys_for([(0, size)]))
    return merkle.range_hash(0, size, nodes)


def _size_or_current(session: Session, organisation_id: str, size: int | None) -> int:
    current = tree_size(session, organisation_id)
    if size is None:
        return current
    if not 1 <= size <= current:
        raise UnusableInput(f"tree_size must be 1 to {current}, the log's size now.")
    return size


@dataclass(frozen=True)
class LogProof:
    """An inclusion or consistency proof: the tree size(s) and the hashes, in RFC order."""

    tree_size: int
    hashes: list[bytes]
    root_hash: bytes


def inclusion_proof(
    session: Session, organisation_id: str, leaf_index: int, size: int | None = None
) -> LogProof:
    """The audit path of leaf ``leaf_index`` in the tree of ``size`` (now when None)."""
    size = _size_or_current(session, organisation_id, size)
    if not 0 <= leaf_index < size:
        raise UnusableInput(f"leaf_index must be 0 to {size - 1} in a tree of {size}.")
    ranges = merkle.inclusion_ranges(leaf_index, size)
    nodes = _nodes(session, organisation_id, merkle.keys_for([*ranges, (0, size)]))
    hashes = [merkle.range_hash(start, end, nodes) for start, end in ranges]
    return LogProof(size, hashes, merkle.range_hash(0, size, nodes))


def consistency_proof(
    session: Session, organisation_id: str, first: int, second: int | None = None
) -> LogProof:
    """The proof that the tree of ``second`` (now when None) extends the tree of ``first``."""
    second = _size_or_current(session, organisation_id, second)
    if not 1 <= first <= second:
        raise UnusableInput(f"first_size must be 1 to {second}.")
    ranges = merkle.consistency_ranges(first, second)
    nodes = _nodes(session, organisation_id, merkle.keys_for([*ranges, (0, second)]))
    hashes = [merkle.range_hash(start, end, nodes) for start, end in ranges]
    return LogProof(second, hashes, merkle.range_hash(0, second, nodes))


def _pem(cert: asn1_x509.Certificate) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    loaded = x509.load_der_x509_certificate(cert.dump())
    return loaded.public_bytes(serialization.Encoding.PEM).decode()


def signed_tree_head(
    session: Session, organisation_id: str, *, tsa: Tsa, tsa_url: str = ""
) -> dict[str, Any]:
    """The log's current head, signed and timestamped, with the certificates to check it."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from cairn.archive.tsa import timestamp_token

    size = tree_size(session, organisation_id)
    body = {
        "organisation": organisation_id,
        "root_hash": _b64(_root(session, organisation_id, size)),
        "timestamp": utcnow().isoformat(),
        "tree_size": size,
    }
    signed = _canonical(body)
    signature = tsa.key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
    token = timestamp_token(hashlib.sha256(signed).digest(), tsa=tsa, tsa_url=tsa_url)
    return {
        **body,
        "signature": _b64(signature),
        "signature_algorithm": "sha256WithRSAEncryption",
        "timestamp_token": _b64(token.dump()),
        "certificate": _pem(tsa.cert),
        "root_certificate": _pem(tsa.root),
    }


def _certificate(pem: object) -> asn1_x509.Certificate:
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    loaded = x509.load_pem_x509_certificate(str(pem).encode())
    return asn1_x509.Certificate.load(loaded.public_bytes(serialization.Encoding.DER))


def check_tree_head(head: dict[str, Any], roots: Sequence[asn1_x509.Certificate] = ()) -> list[str]:
    """Problems with a signed tree head (empty when it holds): the signature by its
    certificate, and the timestamp token's imprint and signature (against ``roots``, or the
    head's own root certificate when none are given: integrity, not trust)."""
    from asn1crypto import cms
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from pyhanko.sign.validation import generic_cms
    from pyhanko_certvalidator import ValidationContext

    try:
        body = {k: head[k] for k in ("organisation", "root_hash", "timestamp", "tree_size")}
        signed = _canonical(body)
        cert = _certificate(head["certificate"])
        own_root = _certificate(head["root_certificate"])
        signature = base64.b64decode(head["signature"], validate=True)
        token = cms.ContentInfo.load(base64.b64decode(head["timestamp_token"], validate=True))
    except (KeyError, TypeError, ValueError) as exc:
        return [f"the tree head is incomplete or malformed ({type(exc).__name__}: {exc})"]
    problems = []
    key = x509.load_der_x509_certificate(cert.dump()).public_key()
    try:
        assert isinstance(key, rsa.RSAPublicKey)
        key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
    except (AssertionError, InvalidSignature):
        problems.append("the tree head's signature does not verify with its certificate")
    digest = hashlib.sha256(signed).digest()
    info = token["content"]["encap_content_info"]["content"].parsed
    if info["message_imprint"]["hashed_message"].native != digest:
        problems.append("the tree head's timestamp covers something else")
    context = ValidationContext(
        trust_roots=list(roots) or [own_root], allow_fetching=False, revocation_mode="soft-fail"
    )
    status = asyncio.run(
        generic_cms.validate_tst_signed_data(token["content"], context, lambda _a: digest)
    )
    if not (status["intact"] and status["valid"]) or status.get("trust_problem_indic"):
        problems.append("the tree head's timestamp token does not verify")
    return problems
