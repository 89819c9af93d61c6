"""XML database tables: one database per organisation, its collections, documents and indexes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cairn.db.base import Base, BlobHash, UtcDateTime, new_id, utcnow

__all__ = ["XmlCollection", "XmlDatabase", "XmlDocument", "XmlIndex"]


class XmlDatabase(Base):
    """An organisation's XML database, created on its first use."""

    __tablename__ = "xml_databases"

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    organisation_id: Mapped[str] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), unique=True
    )
    # Bumped by every commit that changes the database: a server reuses the snapshot it read
    # while this is unchanged (one small query per statement instead of four).
    generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class XmlCollection(Base):
    """A named group of documents (Sedna's collection), its name unique in the database."""

    __tablename__ = "xml_collections"
    __table_args__ = (UniqueConstraint("database_id", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    database_id: Mapped[str] = mapped_column(
        ForeignKey("xml_databases.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class XmlDocument(Base):
    """A stored document: its normalised bytes as a blob, and the version a commit bumps.

    Node ids: the node at canonical position p has id ``first_node_id + p`` until an update
    moves ids off that numbering, then ``node_ids_sha256`` holds them; ``next_node_id`` is
    the next id to give (ids are never reused, so an old id can say "node deleted").
    """

    __tablename__ = "xml_documents"
    __table_args__ = (UniqueConstraint("database_id", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    database_id: Mapped[str] = mapped_column(
        ForeignKey("xml_databases.id", ondelete="CASCADE"), index=True
    )
    collection_id: Mapped[str | None] = mapped_column(
        ForeignKey("xml_collections.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(BlobHash)
    size: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, default=1)
    node_count: Mapped[int] = mapped_column(BigInteger)
    first_node_id: Mapped[int] = mapped_column(BigInteger)
    next_node_id: Mapped[int] = mapped_column(BigInteger)
    node_ids_sha256: Mapped[str | None] = mapped_column(BlobHash)
    # The node table of this content (``_nodes``), saved once built, so a restarted server
    # answers node records without parsing the document again.
    records_sha256: Mapped[str | None] = mapped_column(BlobHash)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    modified_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class XmlIndex(Base):
    """A value index (``CREATE INDEX "name" ON path BY key AS type``): only its definition;
    its content is built from the documents when a query needs it (``_indexes``)."""

    __tablename__ = "xml_indexes"
    __table_args__ = (UniqueConstraint("database_id", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True, default=new_id)
    database_id: Mapped[str] = mapped_column(
        ForeignKey("xml_databases.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(Text)
    key_type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
