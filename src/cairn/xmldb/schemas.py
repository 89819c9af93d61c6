"""The XML database's wire shapes: sessions, statements, result items, node records, documents."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cairn.xmldb.service import DocRef

__all__ = [
    "AtomRead",
    "DocumentCreate",
    "DocumentFromWorkspace",
    "DocumentRead",
    "DocumentReplace",
    "ItemRead",
    "ItemsPortion",
    "LoadRequest",
    "NodeName",
    "NodeRecord",
    "NodesPortion",
    "SessionCreate",
    "SessionRead",
    "StatementAnswer",
    "StatementCreate",
    "StringPart",
    "document_read",
]

MAX_QUERY = 1024 * 1024


class SessionCreate(BaseModel):
    database: str = Field(
        min_length=1,
        max_length=255,
        description="The database: one of your organisations, by id or by name. It is "
        "created on first use.",
    )


class SessionRead(BaseModel):
    id: str = Field(description="The session id; send it with every later call.")
    database_id: str = Field(description="The organisation's XML database.")
    organisation_id: str = Field(description="The organisation owning the database.")
    transaction: int | None = Field(
        description="The open transaction's number, or null in autocommit mode."
    )


class StatementCreate(BaseModel):
    query: str = Field(
        min_length=1, max_length=MAX_QUERY, description="An XQuery 3.1 / XPath 3.1 query."
    )
    variables: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Values for the query's `declare variable $name external;`.",
    )
    lite: bool = Field(
        default=False,
        description="Answer the whole result serialised as text (Sedna's executeQueryLite) "
        "instead of a result cursor.",
    )
    portion: int = Field(
        default=64 * 1024,
        ge=256,
        le=1024 * 1024,
        description="Bytes of node records to ship with the first item (server max 1 MiB).",
    )


class AtomRead(BaseModel):
    type: str = Field(description="The XML Schema type, e.g. xs:integer.")
    value: str = Field(description="The value cast to xs:string.")


class ItemRead(BaseModel):
    atom: AtomRead | None = Field(default=None, description="Set when the item is atomic.")
    oid: str | None = Field(default=None, description="Set when the item is a node: its OID.")
    kind: str | None = Field(default=None, description="The node's kind, for a node item.")


class NodeName(BaseModel):
    ns: str = Field(description="Namespace URI, empty for none.")
    local: str = Field(description="Local name (a processing instruction's target).")
    prefix: str = Field(description="Prefix, empty for none.")


class NodeRecord(BaseModel):
    oid: str = Field(description="The node's OID.")
    kind: str = Field(
        description="document, element, attribute, text, namespace, "
        "processing-instruction or comment."
    )
    name: NodeName | None = Field(description="node-name, null when the kind has none.")
    base_uri: str | None = Field(description="base-uri, or null.")
    type: str = Field(description="The type name as the Sedna API defines it.")
    string_value: str | None = Field(
        description="string-value; null when longer than 64 KiB (fetch it in parts)."
    )
    string_length: int = Field(description="Characters in the string value.")
    parent: str | None = Field(description="The parent's OID.")
    first_child: str | None = Field(description="The first child's OID.")
    next_sibling: str | None = Field(
        description="The next sibling's OID (for attributes and namespaces: the next one)."
    )
    first_attribute: str | None = Field(description="The first attribute's OID.")
    first_namespace: str | None = Field(description="The first namespace node's OID.")


class ItemsPortion(BaseModel):
    offset: int = Field(description="Position of the first item here, from 0.")
    items: list[ItemRead] = Field(description="Items from `offset` on.")
    records: list[NodeRecord] = Field(
        description="Records of the first node item and its subtree, up to the portion size."
    )
    next: int = Field(description="The offset to ask for next.")


class LoadRequest(BaseModel):
    document: str = Field(description="The name the document is to have.")
    collection: str | None = Field(description="Its collection, if any.")
    file: str | None = Field(description="The client's file to send; null: its standard input.")


class StatementAnswer(ItemsPortion):
    kind: str = Field(description="query, update, ddl or load.")
    load: LoadRequest | None = Field(
        default=None,
        description='For `LOAD "file"` and `LOAD STDIN`: the client now sends that file\'s '
        "bytes with `POST …/documents` in this session (Sedna's bulk-load answer).",
    )
    result_id: str | None = Field(default=None, description="The result cursor's id.")
    transaction: int | None = Field(default=None, description="The statement's transaction.")
    size: int = Field(description="Items in the result.")
    text: str | None = Field(default=None, description="The serialised result (lite).")


class NodesPortion(BaseModel):
    records: list[NodeRecord] = Field(
        description="The node's record, then those a walk reads next (see `scope`)."
    )


class StringPart(BaseModel):
    text: str = Field(description="Characters `offset` to `offset + length` of the value.")


class DocumentCreate(BaseModel):
    """A document from its XML text."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255, description="Unique in the database.")
    content: str = Field(description="The document's XML text.")
    collection: str | None = Field(
        default=None, max_length=255, description="A collection to put it in (created if new)."
    )


class DocumentFromWorkspace(BaseModel):
    """A document from a file of one of your workspaces, read on the server."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255, description="Unique in the database.")
    workspace_id: int = Field(description="The workspace (yours to read).")
    path: str = Field(min_length=1, max_length=4096, description="The file's path in it.")
    collection: str | None = Field(
        default=None, max_length=255, description="A collection to put it in (created if new)."
    )


class DocumentReplace(BaseModel):
    content: str = Field(description="The new XML text; the old nodes count as deleted.")
    collection: str | None = Field(default=None, max_length=255, description="Move it here.")


class DocumentRead(BaseModel):
    id: str = Field(description="The document's id (the first part of its nodes' OIDs).")
    name: str = Field(description="Name, unique in the database.")
    collection: str | None = Field(description="Its collection, if any.")
    size: int = Field(description="Bytes stored (normalised XML).")
    version: int = Field(description="Committed version (bumped by each commit changing it).")
    sha256: str = Field(description="SHA-256 of the stored bytes.")
    node_count: int = Field(description="Nodes with an OID (namespace nodes excluded).")


def document_read(doc: DocRef) -> DocumentRead:
    return DocumentRead(
        id=doc.id,
        name=doc.name,
        collection=doc.collection,
        size=doc.size,
        version=doc.version,
        sha256=doc.sha256,
        node_count=doc.node_count,
    )


def statement_answer(raw: dict[str, Any]) -> StatementAnswer:
    raw.setdefault("offset", 0)
    raw.setdefault("items", [])
    raw.setdefault("records", [])
    raw.setdefault("next", 0)
    return StatementAnswer.model_validate(raw)
