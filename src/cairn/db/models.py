"""Imports every area's ORM models so ``Base.metadata`` knows all tables (Alembic, checks)."""

from cairn.accounts import models as accounts_models
from cairn.archive import models as archive_models
from cairn.processing import models as processing_models
from cairn.provenance import models as provenance_models
from cairn.workspaces import models as workspaces_models
from cairn.xmldb import models as xmldb_models

__all__ = [
    "accounts_models",
    "archive_models",
    "processing_models",
    "provenance_models",
    "workspaces_models",
    "xmldb_models",
]
