"""A container as a BagIt bag (RFC 8493) in a zip, and its offline check.

The bag holds, under ``container-<id>/data/``: the document (when the archive keeps it),
each signature as served (``signatures/signature-{i}.sig``, CAdES-A once archived), the
validation reports, the event history and ``container.json``, and ``log.json``: a signed
head of the organisation's transparency log and each event's inclusion proof under it;
payload manifests in SHA-256 and SHA-512 and tag manifests over the tag files.
``verify_export`` needs nothing but the zip: it checks the bag's structure and every
checksum, that the document is the one the container names, each signature's integrity over
it (the CMS message digest and signature value, and every archive-time-stamp-v3's imprint and
hash index), the tree head's signature and timestamp, and that every event is the leaf its
proof puts under that head. Trust in the signer is a matter of trust roots, which the caller
may pass.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from cairn.archive import log as transparency
from cairn.archive import merkle
from cairn.archive._plugin_tasks import document_bytes
from cairn.archive.models import ArchiveContainer
from cairn.archive.plugins import ArchivePlugins
from cairn.archive.service import (
    Caller,
    get_container,
    list_events,
    list_reports,
    signature_bytes,
)
from cairn.archive.statuses import DESCRIPTIONS, ContainerStatus
from cairn.blobs import BlobStore
from cairn.db import utcnow

if TYPE_CHECKING:
    from cairn.archive.tsa import Tsa

__all__ = ["ALGORITHMS", "Check", "export_container", "verify_export"]

ALGORITHMS = ("sha256", "sha512")
# What bagit.txt may say: bagit-python writes 0.97; RFC 8493 (1.0) changed nothing checked here.
BAGIT_TXTS = {
    f"BagIt-Version: {version}\nTag-File-Character-Encoding: UTF-8\n".encode()
    for version in ("0.97", "1.0")
}


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode()


def export_container(
    session: Session,
    blobs: BlobStore,
    plugins: ArchivePlugins,
    caller: Caller,
    container_id: str,
    *,
    tsa: Tsa,
    tsa_url: str = "",
) -> bytes:
    """The container as a zipped BagIt bag (404 when absent or another organisation's).

    The export is itself an event: it is logged first, so the bag's tree head and proofs
    cover every event the bag lists, this one included."""
    view = get_container(session, caller, container_id)
    container: ArchiveContainer = view.container
    transparency.record_event(session, container, "exported")
    session.flush()
    events = list_events(session, caller, container_id)
    head = transparency.signed_tree_head(
        session, container.organisation_id, tsa=tsa, tsa_url=tsa_url
    )
    payload: dict[str, bytes] = {}
    document = document_bytes(blobs, plugins, container)
    if document is not None:
        payload["data/document"] = document
    for position, raw in enumerate(signature_bytes(blobs, view)):
        payload[f"data/signatures/signature-{position}.sig"] = raw
    for report in list_reports(session, caller, container_id):
        payload[f"data/reports/report-{report.id}.json"] = _json(
            {
                "signature": report.signature_id,
                "created_at": report.created_at,
                "verdict": report.verdict,
                "report": json.loads(report.report),
            }
        )
    payload["data/events.json"] = _json(
        [
            {
                "at": e.at,
                "kind": e.kind,
                "detail": e.detail,
                "log_index": e.log_index,
                "log_entry": e.log_entry,
            }
            for e in events
        ]
    )
    proofs = {
        str(e.log_index): [
            base64.b64encode(h).decode()
            for h in transparency.inclusion_proof(
                session, container.organisation_id, e.log_index, head["tree_size"]
            ).hashes
        ]
        for e in events
        if e.log_index is not None
    }
    payload["data/log.json"] = _json({"tree_head": head, "inclusion_proofs": proofs})
    payload["data/container.json"] = _json(
        {
            "id": container.id,
            "name": container.name,
            "status": container.status,
            "status_name": DESCRIPTIONS[ContainerStatus(container.status)][0],
            "status_reason": container.status_reason,
            "document_sha256": container.document_hash,
            "document_size": container.document_size,
            "document_type": container.document_type,
            "document_included": document is not None,
            "save_type": container.save_type,
            "archive_until": container.archive_until,
            "created_at": container.created_at,
            "signature_update_at": container.signature_update_at,
            "signatures": [
                {"position": s.position, "level": s.level, "verdict": s.verdict}
                for s in view.signatures
            ],
        }
    )
    return _bag(
        f"container-{container.id}",
        payload,
        {
            "External-Identifier": container.id,
            "External-Description": "cairn signed-archive container",
        },
    )


def _bag(root: str, payload: dict[str, bytes], info: dict[str, str]) -> bytes:
    """The payload (``data/...`` names) made into a BagIt bag by the ``bagit`` library (SHA-256
    and SHA-512 manifests and tag manifests, Payload-Oxum), checked, and zipped under
    ``root/``."""
    import bagit

    with tempfile.TemporaryDirectory(prefix="cairn-export-") as scratch:
        folder = Path(scratch) / root
        for name, raw in payload.items():
            path = folder / name.removeprefix("data/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(raw)
        made = bagit.make_bag(str(folder), info, checksums=list(ALGORITHMS))
        made.validate()  # a bag that does not validate is never served
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, f"{root}/{path.relative_to(folder).as_posix()}")
        return buffer.getvalue()


@dataclass(frozen=True)
class Check:
    """One check of an export: ``problem`` is None when it holds."""

    what: str
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _read_bag(path: Path) -> tuple[dict[str, bytes], list[Check]]:
    try:
        with zipfile.ZipFile(path) as archive:
            files = {
                info.filename: archive.read(info)
                for info in archive.infolist()
                if not info.is_dir()
            }
    except (OSError, zipfile.BadZipFile) as exc:
        return {}, [Check("the export is a readable zip", f"{type(exc).__name__}: {exc}")]
    roots = {name.split("/", 1)[0] for name in files}
    if len(roots) != 1 or any("/" not in name for name in files):
        return {}, [Check("the zip holds one bag folder", f"top-level entries: {sorted(roots)}")]
    root = roots.pop()
    return {name.split("/", 1)[1]: raw for name, raw in files.items()}, [
        Check(f"the zip holds one bag folder ({root})")
    ]


def _parse_manifest(raw: bytes) -> dict[str, str] | None:
    entries = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep:
            digest, sep, name = line.partition(" ")
        if not sep:
            return None
        entries[name.strip()] = digest.strip().lower()
    return entries


def _manifest_checks(files: dict[str, bytes], kind: str, covered: Iterable[str]) -> list[Check]:
    checks = []
    expected_names = set(covered)
    for algorithm in ALGORITHMS:
        name = f"{kind}-{algorithm}.txt"
        if name not in files:
            checks.append(Check(f"{name} is present", "missing"))
            continue
        entries = _parse_manifest(files[name])
        if entries is None:
            checks.append(Check(f"{name} is well-formed", "a line is not '<digest> <path>'"))
            continue
        bad = []
        for path, digest in sorted(entries.items()):
            if path not in files:
                bad.append(f"{path} is listed but missing")
            elif hashlib.new(algorithm, files[path]).hexdigest() != digest:
                bad.append(f"{path} does not match its {algorithm}")
        if kind == "manifest":
            bad += [f"{path} is not listed" for path in sorted(expected_names - set(entries))]
        checks.append(Check(f"{name}: every file matches", "; ".join(bad) or None))
    return checks


def _signature_checks(
    files: dict[str, bytes], meta: dict[str, object], trust_roots: Path | None
) -> list[Check]:
    from cairn.archive import cades  # pyHanko and asn1crypto: not at server start (#13)
    from cairn.archive.verify import load_crls, load_trust_roots, parse_signature, verify_signature

    checks = []
    document = files.get("data/document")
    content_sha256 = bytes.fromhex(str(meta.get("document_sha256", "")))
    if document is not None:
        matches = hashlib.sha256(document).digest() == content_sha256
        checks.append(
            Check(
                "the document is the one container.json names (SHA-256)",
                None if matches else "data/document's SHA-256 differs from document_sha256",
            )
        )
    roots = load_trust_roots(trust_roots)
    if trust_roots is None:
        checks.append(Check("signers' trust: not checked (no trust roots given), integrity only"))
    names = sorted(n for n in files if n.startswith("data/signatures/"))
    if not names:
        checks.append(Check("the bag holds signatures", "data/signatures/ is empty"))
    for name in names:
        label = name.removeprefix("data/signatures/")
        try:
            signed = parse_signature(files[name])
        except Exception as exc:
            checks.append(Check(f"{label} is a CMS signature", f"{type(exc).__name__}: {exc}"))
            continue
        attached = signed["encap_content_info"]["content"].native is not None
        if document is not None or attached:
            verdict = verify_signature(
                files[name],
                None if attached else document,
                trust_roots=roots,
                crls=load_crls(trust_roots),
                now=utcnow(),
            )
            broken = verdict.verdict in ("content-mismatch", "broken")
            untrusted = verdict.verdict == "untrusted" and trust_roots is None
            problem = verdict.reason if broken or not (verdict.ok or untrusted) else None
            checks.append(Check(f"{label} verifies over the document", problem))
        for index, ats in enumerate(cades.check_archive_timestamps(signed, content_sha256)):
            checks.append(Check(f"{label}: archive-time-stamp-v3 #{index + 1}", ats.problem))
    return checks


def verify_export(path: Path, *, trust_roots: Path | None = None) -> list[Check]:
    """Every check of an exported bag, in order; the export is sound when all are ``ok``."""
    files, checks = _read_bag(path)
    if not files:
        return checks
    if files.get("bagit.txt", b"").replace(b"\r\n", b"\n") not in BAGIT_TXTS:
        checks.append(Check("bagit.txt declares BagIt 0.97 or 1.0", "missing or different"))
    payload = [name for name in files if name.startswith("data/")]
    checks += _manifest_checks(files, "manifest", payload)
    checks += _manifest_checks(files, "tagmanifest", [])
    try:
        meta = json.loads(files["data/container.json"])
        assert isinstance(meta, dict)
    except (KeyError, ValueError, AssertionError):
        return [*checks, Check("data/container.json is readable", "missing or not JSON")]
    return checks + _signature_checks(files, meta, trust_roots) + _log_checks(files, meta)


def _log_checks(files: dict[str, bytes], meta: dict[str, object]) -> list[Check]:
    """The tree head holds (signature, timestamp), and each event is the leaf its inclusion
    proof puts under the head's root."""
    try:
        log = json.loads(files["data/log.json"])
        events = json.loads(files["data/events.json"])
        head, proofs = log["tree_head"], log["inclusion_proofs"]
        root, size = base64.b64decode(head["root_hash"]), int(head["tree_size"])
        assert isinstance(events, list) and isinstance(proofs, dict)
    except (KeyError, TypeError, ValueError, AssertionError) as exc:
        return [Check("data/log.json and data/events.json are readable", f"{exc!r}")]
    problems = transparency.check_tree_head(head)
    checks = [Check("the log's tree head is signed and timestamped", "; ".join(problems) or None)]
    unlogged = 0
    for position, event in enumerate(events):
        label = f"event {position} ({event.get('kind')}) is in the log"
        index, entry = event.get("log_index"), event.get("log_entry")
        if index is None:
            unlogged += 1
            continue
        try:
            leaf = json.loads(entry)
            proof = [base64.b64decode(h) for h in proofs[str(index)]]
        except (KeyError, TypeError, ValueError) as exc:
            checks.append(Check(label, f"no readable leaf or proof ({exc!r})"))
            continue
        said = {"kind": event.get("kind"), "detail": event.get("detail"), "index": index}
        if {k: leaf.get(k) for k in said} != said or leaf.get("container") != meta.get("id"):
            checks.append(Check(label, "the event differs from its logged entry"))
        elif leaf.get("organisation") != head.get("organisation"):
            checks.append(Check(label, "the entry belongs to another organisation's log"))
        elif not merkle.verify_inclusion(
            merkle.leaf_hash(entry.encode()), index, size, proof, root
        ):
            checks.append(Check(label, "the inclusion proof does not lead to the tree head"))
        else:
            checks.append(Check(label))
    if unlogged:
        checks.append(Check(f"{unlogged} event(s) predate the transparency log (no proof)"))
    return checks
