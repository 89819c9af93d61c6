"""Package builds in the background (issue #13, section 6): after each change the server builds
the workspace's package, so ``upload_compressed_size`` is filled and the download is ready.
Re-exported by ``cairn.workspaces.service``; import it from there.

A small thread pool inside the server process, no new infrastructure: the build is mostly
gzip and file I/O, which release the GIL. Builds of one workspace coalesce: a build still
queued will read the newest content when it starts, so a second request adds nothing; one
already running may have read older content, so another is queued behind it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from cairn.blobs import BlobStore
from cairn.db import UnitOfWork
from cairn.errors import NotFound
from cairn.workspaces._core import DELETED, _load, list_files, store_package
from cairn.workspaces._package import PackageFile, build_package

__all__ = ["PackageBuilder", "package_builder", "refresh_package"]

logger = logging.getLogger(__name__)


def refresh_package(
    uow: UnitOfWork, blobs: BlobStore, workspace_id: int, *, work_dir: Path
) -> int | None:
    """Build and record the workspace's package unless it is cached, empty or deleted.

    The server's own work, for a workspace a caller has just changed (so no actor). Built
    with no transaction open; recorded only if the content is still what was built, else the
    build that the newer change queued records its own. Returns the package size, if built.
    """
    with uow.transaction() as session:
        try:
            workspace = _load(session, workspace_id)
        except NotFound:
            return None  # gone meanwhile: nothing to build
        if workspace.state == DELETED or not workspace.file_count:
            return None
        checksum = workspace.checksum
        if workspace.package_sha256 and workspace.package_checksum == checksum:
            return workspace.package_size
        files = [
            PackageFile(f.public_path, f.sha256, f.size, int(f.modified_at.timestamp()))
            for f in list_files(session, workspace.id)
        ]
    work_dir.mkdir(parents=True, exist_ok=True)
    sha256, size = build_package(blobs, files, work_dir=work_dir)
    with uow.transaction() as session:
        try:
            workspace = _load(session, workspace_id, for_update=True)
        except NotFound:
            return None
        if workspace.state == DELETED or workspace.checksum != checksum:
            return None
        if workspace.package_sha256 and workspace.package_checksum == checksum:
            return workspace.package_size  # a download built it meanwhile: record it once
        store_package(session, workspace, None, files, sha256, size)
    return size


class PackageBuilder:
    """Runs ``build(workspace_id)`` on a few background threads, coalescing per workspace.

    ``wait(workspace_id)`` and ``wait_idle()`` block until the builds asked for so far are
    done: tests and shutdown wait on completion itself, never on a guessed delay.
    """

    def __init__(self, build: Callable[[int], object], *, workers: int = 1) -> None:
        self._build = build
        self._workers = workers
        self._pool: ThreadPoolExecutor | None = None  # started on first use, again after close
        self._lock = threading.Lock()
        self._latest: dict[int, Future[None]] = {}

    def submit(self, workspace_id: int) -> Future[None]:
        """Ask for a build of the workspace as it is now (call it after the change commits)."""
        with self._lock:
            latest = self._latest.get(workspace_id)
            if latest is not None and not latest.running() and not latest.done():
                return latest  # queued: it will read the newest content when it starts
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._workers, thread_name_prefix="cairn-package"
                )
            future = self._pool.submit(self._run, workspace_id)
            self._latest[workspace_id] = future
        future.add_done_callback(lambda done: self._forget(workspace_id, done))
        return future

    def building(self, workspace_id: int) -> bool:
        """Whether a build of the workspace is queued or running."""
        with self._lock:
            return workspace_id in self._latest

    def wait(self, workspace_id: int, timeout: float | None = None) -> None:
        """Until the builds of the workspace asked for so far have finished."""
        with self._lock:
            latest = self._latest.get(workspace_id)
        if latest is not None:
            wait_all([latest], timeout=timeout)

    def wait_idle(self, timeout: float | None = None) -> None:
        """Until every build asked for so far has finished."""
        with self._lock:
            pending = list(self._latest.values())
        wait_all(pending, timeout=timeout)

    def close(self) -> None:
        """Finish the builds asked for and stop the threads (the server's shutdown); a later
        ``submit`` starts new ones."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _run(self, workspace_id: int) -> None:
        try:
            self._build(workspace_id)
        except Exception:
            # A failed background build costs only the early size: the download builds again.
            logger.exception("background package build of workspace %s failed", workspace_id)

    def _forget(self, workspace_id: int, done: Future[None]) -> None:
        with self._lock:
            if self._latest.get(workspace_id) is done:
                del self._latest[workspace_id]


def package_builder(
    factory: sessionmaker[Session], blobs: BlobStore, work_dir: Path, *, workers: int = 1
) -> PackageBuilder:
    """The server's builder: ``refresh_package`` on its database, blob store and scratch."""
    uow = UnitOfWork(factory)
    return PackageBuilder(
        lambda workspace_id: refresh_package(uow, blobs, workspace_id, work_dir=work_dir),
        workers=workers,
    )
