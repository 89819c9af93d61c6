"""Database: declarative ``Base``, engine and session factories, migrations.

Services receive a ``Session`` and only ``flush()``; whoever opened the session (a request,
a CLI command, a worker task) commits, so an area's work and its provenance land together.
Workflows that do slow work between steps get a ``UnitOfWork`` and open short transactions.
"""

from cairn.db.base import Base, BlobHash, UtcDateTime, new_id, utcnow
from cairn.db.engine import make_engine, make_sessionmaker, session_scope
from cairn.db.migrate import migrate, referenced_blobs
from cairn.db.paging import paginate
from cairn.db.uow import UnitOfWork

__all__ = [
    "Base",
    "BlobHash",
    "UnitOfWork",
    "UtcDateTime",
    "make_engine",
    "make_sessionmaker",
    "migrate",
    "new_id",
    "paginate",
    "referenced_blobs",
    "session_scope",
    "utcnow",
]
