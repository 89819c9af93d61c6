"""The workspace quarantine (issue #13, section 3): nothing a rule removes is lost.

arXiv moves removed files to a ``removed/`` folder; cairn keeps each one in the blob store as an
entry of the workspace (path, rule, reason, time, hash, size), which its owner may list,
download and restore. An entry is made by:

- the upload's own rules, in the pipeline: junk and hidden files, ``__MACOSX``, arXiv's
  name rules, the earlier copy of a name an archive holds twice, and the bytes a text repair
  or PostScript clean-up replaced (the pipeline stages these like kept files, only marked, and
  ``process_upload`` parts the two);
- the merge and workspace rules in the service: TeX-generated files (rule 17), a ``.bib``
  once its ``.bbl`` is there (rule 28), and a file an upload or a restore replaces.

Empty files, links and devices have no bytes to keep and are only reported. Deleting a file or
restoring a checkpoint is the owner's own act and is not quarantined. Re-exported by
``cairn.workspaces.service``; the restore workflow lives there, since it is an upload.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from cairn.accounts.service import Actor, Privilege
from cairn.db import paginate
from cairn.errors import Conflict, Forbidden, NotFound
from cairn.workspaces._arxiv_rules import Removal
from cairn.workspaces._checks import JunkKind
from cairn.workspaces._core import (
    DELETED,
    MSG_NOT_FOUND,
    FileRecord,
    RemovedFile,
    get_workspace,
    log,
    removed_file,
)
from cairn.workspaces.models import Workspace, WorkspaceRemovedFile

if TYPE_CHECKING:  # _unpack imports the pipeline, which imports this module
    from cairn.workspaces._unpack import StagedFile


class StoredFileLike(Protocol):
    """An uploaded file in the blob store (``service.StoredFile``)."""

    @property
    def public_path(self) -> str: ...
    @property
    def sha256(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def file_type(self) -> str: ...
    @property
    def mtime(self) -> int | None: ...


__all__ = [
    "RULE_DUPLICATE",
    "RULE_POSTSCRIPT",
    "RULE_REPLACED",
    "RULE_TEXT_REPAIR",
    "NameTaken",
    "dropped_new",
    "find_removed",
    "junk_rule",
    "page_removed",
    "replaced_files",
    "require_owner",
    "staged_removed",
]

# arXiv's checker names where the rule is arXiv's (docs/quarantine.md lists them all).
RULE_TEXT_REPAIR = "UnMacify"
RULE_POSTSCRIPT = "CleanupPostScript"
RULE_DUPLICATE = "duplicate"  # an archive held the name twice: the last copy is the file
RULE_REPLACED = "replaced"  # an upload or a restore put other bytes at its path
_JUNK_RULES: Mapping[tuple[bool, JunkKind], str] = {
    (True, "macosx"): "RemoveMacOSXHiddenFiles",
    (True, "hidden"): "RemoveFilesWithLeadingDot",
    (False, "macosx"): "macosx",
    (False, "hidden"): "hidden",
    (False, "not_allowed"): "junk",
}
MSG_ENTRY_NOT_FOUND = "removed file not found"


class NameTaken(Conflict):
    """A restore would replace a current file, and the caller did not ask to overwrite it."""

    code = "name-taken"
    title = "Name taken"


def junk_rule(what: JunkKind, *, arxiv: bool) -> str:
    """The rule name of a junk removal, under arXiv's rules or cairn's own."""
    return _JUNK_RULES.get((arxiv, what), what)


def staged_removed(staged: StagedFile, sha256: str) -> RemovedFile:
    """A file the pipeline removed and kept aside, once its bytes are in the blob store."""
    rule, reason = staged.quarantine or ("removed", "")
    mtime = None if staged.mtime is None else datetime.fromtimestamp(staged.mtime, UTC)
    return RemovedFile(
        staged.public_path, sha256, staged.size, staged.file_type, rule, reason, mtime
    )


def dropped_new(
    uploaded: Sequence[StoredFileLike],
    kept: Sequence[StoredFileLike],
    removals: Mapping[str, Removal],
) -> list[RemovedFile]:
    """The files of an upload that a merge rule dropped before they reached the workspace."""
    kept_paths = {f.public_path for f in kept}
    return [
        RemovedFile(
            f.public_path,
            f.sha256,
            f.size,
            f.file_type,
            removals[f.public_path].rule,
            removals[f.public_path].finding.message,
            None if f.mtime is None else datetime.fromtimestamp(f.mtime, UTC),
        )
        for f in uploaded
        if f.public_path not in kept_paths and f.public_path in removals
    ]


def replaced_files(
    current: Mapping[str, FileRecord], files: Sequence[StoredFileLike], filename: str
) -> list[RemovedFile]:
    """The current files that ``files`` give other bytes (same bytes lose nothing)."""
    return [
        removed_file(
            current[f.public_path], RULE_REPLACED, f"Replaced by the upload of '{filename}'."
        )
        for f in files
        if f.public_path in current and current[f.public_path].sha256 != f.sha256
    ]


def require_owner(actor: Actor, workspace: Workspace) -> None:
    """The quarantine is its owner's: removed files may hold what was never meant to be
    shared (a ``.netrc``, a ``.git`` folder). Its creator, or a manager of its organisation."""
    held = actor.privileges.get(workspace.organisation_id)
    if workspace.owner_id != actor.id and (held is None or held < Privilege.manage):
        raise Forbidden(
            "Only the workspace's owner (or a manager of its organisation) may see or restore "
            "its removed files."
        )


def _owned(session: Session, actor: Actor, workspace_id: int, *, change: bool) -> Workspace:
    workspace = get_workspace(
        session,
        actor,
        workspace_id,
        need=Privilege.execute if change else Privilege.view,
        for_update=change,
    )
    if workspace.state == DELETED:
        raise NotFound(MSG_NOT_FOUND)
    require_owner(actor, workspace)
    return workspace


def page_removed(
    session: Session, actor: Actor, workspace_id: int, *, page: int = 1, page_size: int = 50
) -> tuple[Sequence[WorkspaceRemovedFile], int]:
    """One page of the workspace's quarantine, newest first."""
    workspace = _owned(session, actor, workspace_id, change=False)
    query = (
        select(WorkspaceRemovedFile)
        .where(WorkspaceRemovedFile.workspace_id == workspace.id)
        .order_by(
            WorkspaceRemovedFile.removed_at.desc(),
            WorkspaceRemovedFile.public_path,
            WorkspaceRemovedFile.id,
        )
    )
    return paginate(session, query, page=page, page_size=page_size)


def lookup_removed(
    session: Session, workspace: Workspace, entry_id: str, *, for_update: bool = False
) -> WorkspaceRemovedFile:
    query = select(WorkspaceRemovedFile).where(
        WorkspaceRemovedFile.workspace_id == workspace.id, WorkspaceRemovedFile.id == entry_id
    )
    if for_update:  # decide on the row as it is now: a racing restore may have taken it
        query = query.execution_options(populate_existing=True)
    entry = session.scalar(query)
    if entry is None:
        raise NotFound(MSG_ENTRY_NOT_FOUND)
    return entry


def find_removed(
    session: Session,
    actor: Actor,
    workspace_id: int,
    entry_id: str,
    *,
    read: bool = False,
    client_has: Callable[[str], bool] = lambda sha256: False,
) -> tuple[WorkspaceRemovedFile, Workspace]:
    """One quarantine entry and its workspace; ``read`` (a download sending the bytes) is
    noted in the source log."""
    workspace = _owned(session, actor, workspace_id, change=False)
    entry = lookup_removed(session, workspace, entry_id)
    if read and not client_has(entry.sha256):
        log(session, workspace, actor, "info", f"downloaded removed file '{entry.public_path}'")
    return entry, workspace


def owned_for_restore(session: Session, actor: Actor, workspace_id: int) -> Workspace:
    """The workspace under its row lock, for a restore (the caller checks it is writable)."""
    return _owned(session, actor, workspace_id, change=True)
