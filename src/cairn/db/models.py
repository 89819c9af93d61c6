"""Imports every area's ORM models so ``Base.metadata`` knows all tables (Alembic, checks)."""

from cairn.accounts import models as accounts_models
from cairn.archive import models as archive_models
from cairn.workspaces import models as workspaces_models

__all__ = ["accounts_models", "archive_models", "workspaces_models"]
