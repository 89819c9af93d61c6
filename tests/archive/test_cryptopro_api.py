"""The CryptoPro Archive wire contract, in-process: upload, details, status, signatures zip,
search, storages, statuses, the envelope on every error, and the issue's bad-input list."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cairn.config import Settings
from tests.archive.helpers import ArchiveClient, make_archive_client, upload_form
from tests.archive.pki import LocalPKI, pyhanko_sign
from tests.archive.test_verify import _with_digest_oid
from tests.factories import Member

DOCUMENT = b"Contract no. 7, as signed by both parties.\n"


pytestmark = pytest.mark.usefixtures("trust_the_test_ca")


def _put(client: TestClient, arch: ArchiveClient, headers: dict[str, str] | None = None, **kw: Any):  # type: ignore[no-untyped-def]
    content = kw.pop("content", DOCUMENT)
    signs = kw.pop("signs", None)
    return client.post(
        "/api/document/content",
        headers=headers if headers is not None else arch.key_headers,
        **upload_form(arch.storage_id, content, signs, **kw),
    )


def _error(answer: Any, status: int, code: str | None = None) -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["data"] is None and isinstance(body["errorDescription"], str), body
    if code is not None:
        assert body["errorCode"] == code, body
    description: str = body["errorDescription"]
    return description


def test_the_guides_curl_creates_a_verified_container(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI
) -> None:
    signs = [pyhanko_sign(pki.rsa_signer, DOCUMENT), pyhanko_sign(pki.ec_signer, DOCUMENT)]
    answer = _put(client, arch, signs=signs, headers={**arch.key_headers, "accept": "text/plain"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["errorCode"] is None and body["errorDescription"] is None
    container_id = body["data"]

    details = client.get(f"/api/document/{container_id}", headers=arch.key_headers).json()["data"]
    assert details["id"] == container_id and details["name"] == "MyContainer"
    assert details["status"] == 2 and details["isArchived"] is False  # verified
    assert details["storage"] == {"id": arch.storage_id, "name": "Main"}
    assert details["sourceSystem"] == {"id": arch.source_system_id, "name": "Docs"}
    digest = base64.b64encode(hashlib.sha256(DOCUMENT).digest()).decode()
    assert details["hashes"] == [digest, digest]
    assert [base64.b64decode(s) for s in details["signatures"]] == signs
    assert details["documentType"] == "text/plain"
    assert details["saveType"] == 1 and details["useArchiveCa"] is False
    assert details["isAvailable"] is False  # UseArchiveCa=false: the client keeps the document
    assert details["archiveUntilDate"] == "2030-07-21T00:00:00Z"
    assert details["structureName"] is None and details["statusReason"] is None
    for name in ("modifiedDate", "isCreateDate", "createDate", "signatureUpdateDate"):
        assert name in details

    status = client.get(f"/api/document/{container_id}/status", headers=arch.key_headers)
    assert status.json() == {"data": 2, "errorCode": None, "errorDescription": None}

    zipped = client.get(
        f"/api/document/{container_id}/sign", headers={"accept": "*/*", **arch.key_headers}
    )
    assert zipped.status_code == 200
    assert zipped.headers["content-type"] == "application/zip"
    assert zipped.headers["content-disposition"] == (
        "attachment; filename=signatures.zip; filename*=UTF-8''signatures.zip"
    )
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        assert archive.namelist() == ["signature-0.sig", "signature-1.sig"]
        assert [archive.read(n) for n in archive.namelist()] == signs


def test_a_validation_report_and_events_are_stored(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI, settings: Settings
) -> None:
    from cairn.archive import service
    from cairn.db import make_engine, make_sessionmaker, session_scope

    container_id = _put(client, arch, signs=[pyhanko_sign(pki.rsa_signer, DOCUMENT)]).json()["data"]
    engine = make_engine(settings)
    caller = service.Caller(readable=frozenset({arch.member.organisation_id}), writable=frozenset())
    with session_scope(make_sessionmaker(engine)) as session:
        reports = service.list_reports(session, caller, container_id)
        events = service.list_events(session, caller, container_id)
        assert [r.verdict for r in reports] == ["valid"]
        assert '"bottom_line": true' in reports[0].report
        assert [e.kind for e in events] == ["created", "verified"]
    engine.dispose()


def test_an_attached_signature_with_empty_optional_fields(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI
) -> None:
    attached = pyhanko_sign(pki.rsa_signer, DOCUMENT, detached=False)
    files = upload_form(
        arch.storage_id,
        attached,
        StructureName="",
        IsNeedArchivatorSign="",
        ArchiveCaPluginName="",
        SaveType="2",
        ArchiveDate="",
        UseArchiveCa="",
    )["files"]
    files.append(("Signs", (None, "")))  # Swagger's "Send empty value" on Signs
    answer = client.post("/api/document/content", headers=arch.key_headers, files=files)
    assert answer.status_code == 200, answer.text
    details = client.get(f"/api/document/{answer.json()['data']}", headers=arch.key_headers)
    data = details.json()["data"]
    assert data["status"] == 2 and data["saveType"] == 2 and data["archiveUntilDate"] is None
    assert data["isAvailable"] is True  # the document is inside the attached signature
    assert data["hashes"] == [base64.b64encode(hashlib.sha256(DOCUMENT).digest()).decode()]


def test_use_archive_ca_keeps_the_document(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI
) -> None:
    answer = _put(client, arch, signs=[pyhanko_sign(pki.rsa_signer, DOCUMENT)], UseArchiveCa="true")
    data = client.get(f"/api/document/{answer.json()['data']}", headers=arch.key_headers).json()
    assert data["data"]["useArchiveCa"] is True and data["data"]["isAvailable"] is True


def test_a_bearer_token_acts_as_the_users_own_source_system(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI
) -> None:
    answer = _put(
        client, arch, headers=arch.member.headers, signs=[pyhanko_sign(pki.rsa_signer, DOCUMENT)]
    )
    assert answer.status_code == 200, answer.text
    details = client.get(f"/api/document/{answer.json()['data']}", headers=arch.member.headers)
    system = details.json()["data"]["sourceSystem"]
    assert system["id"] != arch.source_system_id and system["name"] == arch.member.email


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("ContainerName", "ContainerName is required"),
        ("StorageId", "StorageId is required"),
        ("SaveType", "SaveType is required"),
    ],
)
def test_missing_required_fields(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI, missing: str, message: str
) -> None:
    signs = [pyhanko_sign(pki.rsa_signer, DOCUMENT)]
    answer = _put(client, arch, signs=signs, **{missing: ""})
    assert message in _error(answer, answer.status_code)
    assert answer.status_code in (400, 422)


def test_missing_content(client: TestClient, arch: ArchiveClient) -> None:
    form = upload_form(arch.storage_id, b"x")["files"]
    form = [part for part in form if part[0] != "Content"]
    answer = client.post("/api/document/content", headers=arch.key_headers, files=form)
    assert "Content is required" in _error(answer, 400, "bad-request")


def test_empty_content(client: TestClient, arch: ArchiveClient, pki: LocalPKI) -> None:
    answer = _put(client, arch, content=b"", signs=[pyhanko_sign(pki.rsa_signer, DOCUMENT)])
    assert "Content is empty" in _error(answer, 422)


@pytest.mark.parametrize(
    ("archive_date", "message"),
    [(None, "ArchiveDate is required"), ("01.01.2001", "in the past"), ("soon", "not a date")],
)
def test_temporary_needs_a_future_archive_date(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI, archive_date: str | None, message: str
) -> None:
    signs = [pyhanko_sign(pki.rsa_signer, DOCUMENT)]
    answer = _put(client, arch, signs=signs, ArchiveDate=archive_date)  # type: ignore[arg-type]
    assert message in _error(answer, 422)


def test_iso_archive_dates_are_accepted(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI
) -> None:
    signs = [pyhanko_sign(pki.rsa_signer, DOCUMENT)]
    for value, shown in [
        ("2031-02-03", "2031-02-03T00:00:00Z"),
        ("2031-02-03T10:00:00+03:00", "2031-02-03T07:00:00Z"),
    ]:
        answer = _put(client, arch, signs=signs, ArchiveDate=value)
        data = client.get(f"/api/document/{answer.json()['data']}", headers=arch.key_headers)
        assert data.json()["data"]["archiveUntilDate"] == shown


def test_unknown_or_foreign_storage(
    client: TestClient,
    arch: ArchiveClient,
    pki: LocalPKI,
    settings: Settings,
    make_member: Callable[..., Member],
) -> None:
    signs = [pyhanko_sign(pki.rsa_signer, DOCUMENT)]
    answer = _put(client, arch, signs=signs, StorageId="999999")
    assert "Storage 999999 not found" in _error(answer, 404, "storage-not-found")
    stranger = make_archive_client(settings, make_member(), storage="Theirs")
    answer = _put(client, arch, signs=signs, StorageId=str(stranger.storage_id))
    _error(answer, 404, "storage-not-found")
    assert "int" in _error(_put(client, arch, signs=signs, StorageId="four"), 422)


def test_a_storage_plugin_name_that_is_not_configured(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI
) -> None:
    signs = [pyhanko_sign(pki.rsa_signer, DOCUMENT)]
    answer = _put(client, arch, signs=signs, UseArchiveCa="true", ArchiveCaPluginName="nas_01")
    assert "nas_01" in _error(answer, 422, "plugin-unavailable")


def test_signs_with_an_attached_signature(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI
) -> None:
    attached = pyhanko_sign(pki.rsa_signer, DOCUMENT, detached=False)
    answer = _put(client, arch, content=attached, signs=[pyhanko_sign(pki.rsa_signer, attached)])
    assert "attached signature: send no Signs" in _error(answer, 422)
    answer = _put(client, arch, signs=[attached])
    assert "send it as Content" in _error(answer, 422)


def test_no_signature_at_all(client: TestClient, arch: ArchiveClient) -> None:
    assert "No signatures" in _error(_put(client, arch), 422)


def test_not_cms_and_base64_signatures_are_refused(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI
) -> None:
    answer = _put(client, arch, signs=[b"this is no signature"])
    _error(answer, 400, "not-cms")
    encoded = base64.b64encode(pyhanko_sign(pki.rsa_signer, DOCUMENT))
    assert "base64" in _error(_put(client, arch, signs=[encoded]), 400, "base64-signature")


@pytest.mark.parametrize(
    ("signer", "tamper", "reason"),
    [
        ("rsa_signer", "other-content", "made over other content"),
        ("stranger_signer", None, "does not chain to a configured trust root"),
        ("expired_signer", None, "not valid at signing time"),
        ("rsa_signer", "gost", "Unsupported algorithm: GOST"),
    ],
)
def test_signatures_that_do_not_verify_put_the_container_in_error(
    client: TestClient,
    arch: ArchiveClient,
    pki: LocalPKI,
    signer: str,
    tamper: str | None,
    reason: str,
) -> None:
    raw = pyhanko_sign(getattr(pki, signer), b"other" if tamper == "other-content" else DOCUMENT)
    if tamper == "gost":
        raw = _with_digest_oid(raw, "1.2.643.7.1.1.2.3")
    answer = _put(client, arch, signs=[raw])
    assert answer.status_code == 200, answer.text
    details = client.get(f"/api/document/{answer.json()['data']}", headers=arch.key_headers)
    data = details.json()["data"]
    assert data["status"] == 7  # error
    assert data["statusReason"].startswith("Signature 0: ") and reason in data["statusReason"]


def test_oversize_content_is_413(
    settings: Settings, make_member: Callable[..., Member], pki: LocalPKI
) -> None:
    from cairn.api import create_app

    small = settings.model_copy(update={"max_upload_bytes": 64 * 1024})
    app = create_app(small)
    arch = make_archive_client(small, make_member())
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = _put(
            client, arch, content=b"x" * 100_000, signs=[pyhanko_sign(pki.rsa_signer, DOCUMENT)]
        )
    app.state.engine.dispose()
    _error(answer, 413, "too-large")


# --- other organisations, credentials ----------------------------------------------------------


def test_strangers_get_401_or_404_in_the_envelope(
    client: TestClient,
    arch: ArchiveClient,
    pki: LocalPKI,
    settings: Settings,
    make_member: Callable[..., Member],
) -> None:
    container_id = _put(client, arch, signs=[pyhanko_sign(pki.rsa_signer, DOCUMENT)]).json()["data"]
    answer = client.get(f"/api/document/{container_id}")
    _error(answer, 401, "unauthorized")
    assert answer.headers["www-authenticate"] == "Bearer"
    _error(client.get(f"/api/document/{container_id}", headers={"X-Api-Key": "cak_forged"}), 401)
    stranger = make_archive_client(settings, make_member(), storage="Theirs")
    for headers in (stranger.key_headers, stranger.member.headers):
        for path in ("", "/status", "/sign"):
            answer = client.get(f"/api/document/{container_id}{path}", headers=headers)
            _error(answer, 404, "container-not-found")
        found = client.post("/api/document/search", headers=headers, json={}).json()["data"]
        assert found == {"documents": [], "totalRecords": 0}
        storages = client.get("/api/user/storages", headers=headers).json()["data"]
        assert storages == [{"id": stranger.storage_id, "name": "Theirs"}]
    _error(client.get("/api/document/not-a-uuid", headers=arch.key_headers), 422)


# --- search, storages, statuses, swagger -------------------------------------------------------


def test_search_filters_and_pages_newest_first(
    client: TestClient, arch: ArchiveClient, pki: LocalPKI
) -> None:
    good = [pyhanko_sign(pki.rsa_signer, DOCUMENT)]
    ids = [
        _put(client, arch, signs=good, ContainerName=f"Invoice {i}").json()["data"]
        for i in range(3)
    ]
    bad = _put(
        client, arch, signs=[pyhanko_sign(pki.stranger_signer, DOCUMENT)], ContainerName="Odd"
    )
    headers = arch.key_headers

    def search(body: Any) -> Any:
        answer = client.post("/api/document/search", headers=headers, json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()["data"]

    everything = search({})
    assert [d["id"] for d in everything["documents"]] == [bad.json()["data"], *reversed(ids)]
    assert everything["totalRecords"] == 4
    assert client.post("/api/document/search", headers=headers).json()["data"] == everything
    named = search({"filters": {"name": "voice"}, "pageSize": 2, "page": 2})
    assert [d["id"] for d in named["documents"]] == [ids[0]] and named["totalRecords"] == 3
    assert search({"filters": {"status": 7}})["documents"][0]["name"] == "Odd"
    assert search({"filters": {"isArchived": True}})["totalRecords"] == 0
    assert search({"filters": {"isArchived": False}})["totalRecords"] == 0  # none ended yet
    assert search({"filters": {"storageIds": [arch.storage_id + 1000]}})["totalRecords"] == 0
    assert search({"filters": {"sourceSystemId": arch.source_system_id}})["totalRecords"] == 4
    assert everything["documents"][0] == {
        "id": bad.json()["data"],
        "name": "Odd",
        "status": 7,
        "isArchived": False,
    }
    _error(client.post("/api/document/search", headers=headers, json={"page": 0}), 422)


def test_statuses_dictionary_is_fixed(client: TestClient, arch: ArchiveClient) -> None:
    data = client.get("/api/dictionary/statuses", headers=arch.key_headers).json()["data"]
    names = {s["id"]: s["name"] for s in data}
    assert names[4] == "Archival storage"
    assert {
        "Received",
        "Verifying",
        "Verified",
        "Enhancing",
        "Re-stamp due",
        "Storage ended",
        "Error",
        "Deleted",
    } <= set(names.values())
    assert all(s["description"] for s in data)


def test_swagger_redirects_to_the_swagger_ui(client: TestClient) -> None:
    answer = client.get("/swagger", follow_redirects=False)
    assert answer.status_code == 307 and answer.headers["location"] == "/docs"


def test_openapi_documents_a_multipart_form_swagger_can_submit(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/document/content"]["post"]
    schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    fields = schema["properties"]
    assert fields["Content"] == {**fields["Content"], "type": "string", "format": "binary"}
    assert fields["Signs"]["items"]["format"] == "binary"
    assert fields["StorageId"]["format"] == "int32"
    assert {"Temporary", "Permanent"} <= set(fields["SaveType"]["enum"])
    assert set(schema["required"]) == {"Content", "StorageId", "SaveType", "ContainerName"}
