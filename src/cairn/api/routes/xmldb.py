"""The XML database: sessions, transactions, XQuery statements, result items, node records and
documents, under ``/api/v1/xml``. The Python client is ``cairn.client.xmldb``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response

from cairn.api.deps import ActorDep
from cairn.api.paging import Page, PageDep, page_of
from cairn.xmldb import calls
from cairn.xmldb.schemas import (
    DocumentCreate,
    DocumentFromWorkspace,
    DocumentRead,
    DocumentReplace,
    ItemsPortion,
    NodesPortion,
    SessionCreate,
    SessionRead,
    StatementAnswer,
    StatementCreate,
    StringPart,
    document_read,
)
from cairn.xmldb.service import DocRef

router = APIRouter(prefix="/api/v1/xml", tags=["xml"])

SessionPath = Annotated[str, Path(max_length=64, description="The session id.")]
ResultPath = Annotated[str, Path(max_length=64, description="The result id.")]
DocumentPath = Annotated[str, Path(max_length=255, description="The document's name.")]
OidPath = Annotated[str, Path(max_length=400, description="A node OID.")]
Portion = Annotated[
    int, Query(ge=256, le=1024 * 1024, description="Bytes of records to answer at most.")
]


@router.post("/sessions", status_code=201, response_model=SessionRead)
def open_session(body: SessionCreate, actor: ActorDep, request: Request) -> SessionRead:
    """Open a session on an organisation's XML database (created on first use). Statements
    autocommit until you `begin` a transaction."""
    return calls.session_read(calls.server(request).open_session(actor, body.database))


@router.get("/sessions/{session_id}", response_model=SessionRead)
def get_session(session_id: SessionPath, actor: ActorDep, request: Request) -> SessionRead:
    """The session and its open transaction, if any."""
    return calls.session_read(calls.server(request).session(actor, session_id))


@router.delete("/sessions/{session_id}", status_code=204)
def close_session(session_id: SessionPath, actor: ActorDep, request: Request) -> Response:
    """Close the session; an open transaction is rolled back and its results closed."""
    calls.server(request).close_session(actor, session_id)
    return Response(status_code=204)


@router.post("/sessions/{session_id}/begin", response_model=SessionRead)
def begin(session_id: SessionPath, actor: ActorDep, request: Request) -> SessionRead:
    """Begin a transaction: it reads the database as of now plus its own changes."""
    return calls.run(request, actor, session_id, calls.XmlSession.begin, calls.session_read)


@router.post("/sessions/{session_id}/commit", response_model=SessionRead)
def commit(session_id: SessionPath, actor: ActorDep, request: Request) -> SessionRead:
    """Commit all of the transaction or none of it. If another transaction committed a change
    to a document this one changed, this answers 409 and applies nothing."""
    return calls.run(request, actor, session_id, calls.XmlSession.commit, calls.session_read)


@router.post("/sessions/{session_id}/rollback", response_model=SessionRead)
def rollback(session_id: SessionPath, actor: ActorDep, request: Request) -> SessionRead:
    """Drop the transaction's changes and close its results."""
    return calls.run(request, actor, session_id, calls.XmlSession.rollback, calls.session_read)


@router.post("/sessions/{session_id}/statements", response_model=StatementAnswer)
def execute(
    session_id: SessionPath, body: StatementCreate, actor: ActorDep, request: Request
) -> StatementAnswer:
    """Run an XQuery. `doc("name")`, `document("name")` and `collection("name")` read this
    database's documents only. The answer holds the first item (and the first portion of its
    node records); fetch more items from the result. Engine errors answer 400 with the W3C
    error code."""
    return calls.run(
        request,
        actor,
        session_id,
        lambda s: s.execute(body.query, body.variables, lite=body.lite, portion=body.portion),
        calls.statement_answer,
    )


@router.get("/sessions/{session_id}/results/{result_id}/items", response_model=ItemsPortion)
def get_items(
    session_id: SessionPath,
    result_id: ResultPath,
    actor: ActorDep,
    request: Request,
    offset: Annotated[int, Query(ge=0, le=2**31, description="First item, from 0.")] = 0,
    count: Annotated[int, Query(ge=1, le=10_000, description="Items at most.")] = 100,
    portion: Portion = 64 * 1024,
) -> ItemsPortion:
    """Items of a result from `offset` on, bounded by `count` and `portion` bytes."""
    return calls.run(
        request,
        actor,
        session_id,
        lambda s: s.items(result_id, offset, count, portion),
        ItemsPortion.model_validate,
    )


@router.delete("/sessions/{session_id}/results/{result_id}", status_code=204)
def close_result(
    session_id: SessionPath, result_id: ResultPath, actor: ActorDep, request: Request
) -> Response:
    """Close a result cursor early."""
    calls.run(request, actor, session_id, lambda s: s.close_result(result_id), lambda _: None)
    return Response(status_code=204)


@router.get("/sessions/{session_id}/nodes/{oid}", response_model=NodesPortion)
def get_node(
    session_id: SessionPath,
    oid: OidPath,
    actor: ActorDep,
    request: Request,
    portion: Portion = 64 * 1024,
    scope: Annotated[
        Literal["following", "siblings"],
        Query(
            description="After the node: `following`, the nodes after it in document order "
            "(its subtree first); `siblings`, its next siblings first (a children() walk)."
        ),
    ] = "following",
) -> NodesPortion:
    """A node's record (kind, name, base URI, type, string value, and its parent, first
    child, next sibling, first attribute and first namespace OIDs), then the records a walk
    reads next (each element's attributes after it), while `portion` bytes allow. A node an
    update deleted answers 404 with code `node-deleted`."""
    return calls.run(
        request,
        actor,
        session_id,
        lambda s: s.node(oid, portion, scope),
        lambda records: NodesPortion.model_validate({"records": records}),
    )


@router.get("/sessions/{session_id}/nodes/{oid}/string", response_model=StringPart)
def get_node_string(
    session_id: SessionPath,
    oid: OidPath,
    actor: ActorDep,
    request: Request,
    offset: Annotated[int, Query(ge=0, le=2**40, description="First character.")] = 0,
    length: Annotated[int, Query(ge=1, le=1024 * 1024, description="Characters.")] = 65536,
) -> StringPart:
    """Part of a node's string value (records leave out values over 64 KiB)."""
    return calls.run(
        request,
        actor,
        session_id,
        lambda s: s.node_string(oid, offset, length),
        lambda text: StringPart(text=text),
    )


@router.get("/sessions/{session_id}/documents", response_model=Page[DocumentRead])
def list_documents(
    session_id: SessionPath,
    actor: ActorDep,
    request: Request,
    paging: PageDep,
    collection: Annotated[
        str | None, Query(max_length=255, description="Only this collection's.")
    ] = None,
) -> Page[DocumentRead]:
    """The documents as the session sees them (its transaction's changes included), by name."""
    docs = calls.run(request, actor, session_id, lambda s: s.list_documents(collection), list)
    start = (paging.page - 1) * paging.page_size
    return page_of(docs[start : start + paging.page_size], len(docs), paging, document_read)


@router.post("/sessions/{session_id}/documents", status_code=201, response_model=DocumentRead)
def load_document(
    session_id: SessionPath,
    body: DocumentCreate | DocumentFromWorkspace,
    actor: ActorDep,
    request: Request,
) -> DocumentRead:
    """Load a document (its name unique in the database) from its XML text, or from a file of
    one of your workspaces (`workspace_id` and `path`). Malformed XML answers 400 with the
    parser's line and column."""

    def load(s: calls.XmlSession) -> DocRef:
        if isinstance(body, DocumentCreate):
            return s.load_document(body.name, body.content, body.collection, replace=False)
        return s.load_workspace_file(body.name, body.workspace_id, body.path, body.collection)

    return calls.run(request, actor, session_id, load, document_read)


@router.get(
    "/sessions/{session_id}/documents/{document:filepath}",
    responses={200: {"content": {"application/xml": {}}, "description": "The XML text."}},
)
def get_document(
    session_id: SessionPath, document: DocumentPath, actor: ActorDep, request: Request
) -> Response:
    """The document as stored (normalised: UTF-8, no DOCTYPE)."""
    content = calls.run(request, actor, session_id, lambda s: s.document_text(document), bytes)
    return Response(content, media_type="application/xml")


@router.put("/sessions/{session_id}/documents/{document:filepath}", response_model=DocumentRead)
def replace_document(
    session_id: SessionPath,
    document: DocumentPath,
    body: DocumentReplace,
    actor: ActorDep,
    request: Request,
) -> DocumentRead:
    """Replace a document's content; OIDs of its old nodes then answer `node-deleted`."""
    return calls.run(
        request,
        actor,
        session_id,
        lambda s: s.load_document(document, body.content, body.collection, replace=True),
        document_read,
    )


@router.delete("/sessions/{session_id}/documents/{document:filepath}", status_code=204)
def delete_document(
    session_id: SessionPath, document: DocumentPath, actor: ActorDep, request: Request
) -> Response:
    """Delete a document."""
    calls.run(request, actor, session_id, lambda s: s.delete_document(document), lambda _: None)
    return Response(status_code=204)
