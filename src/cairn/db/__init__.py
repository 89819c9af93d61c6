"""Database: declarative ``Base``, engine and session factories, migrations.

Services receive a ``Session`` and only ``flush()``; whoever opened the session (a request,
a CLI command, a worker task) commits, so an area's work and its provenance land together.
"""

from cairn.db.base import Base, BlobHash, UtcDateTime, new_id, utcnow
from cairn.db.engine import make_engine, make_sessionmaker, session_scope
from cairn.db.migrate import migrate, referenced_blobs

__all__ = [
    "Base",
    "BlobHash",
    "UtcDateTime",
    "make_engine",
    "make_sessionmaker",
    "migrate",
    "new_id",
    "referenced_blobs",
    "session_scope",
    "utcnow",
]
