"""RunManager's recording calls in Python: ``record(script, *args, tag=...)``,
``start_record(tag=...)`` / ``end_record()`` and ``with recording(tag=...):``.

Runs go to a ``RunStore``: by default the cairn data folder's own database and blob store, so
recording needs no server. The run's row is written when it starts (status ``running``) and
completed when it ends; a script that raises is recorded with status ``error`` and its
traceback, one stopped by SIGTERM / SIGINT / SIGHUP with status ``killed``.
"""

from __future__ import annotations

import os
import runpy
import shutil
import signal
import sys
import traceback
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from cairn.blobs import BlobStore
from cairn.provenance._draft import RunDraft, utcnow
from cairn.provenance._environment import environment
from cairn.provenance._sqlite import SqliteRuns
from cairn.provenance.capture import (
    Capture,
    CaptureOptions,
    archive_files,
    discard_staged,
    snapshot,
)
from cairn.provenance.errors import NotRecording, RecordingActive

if TYPE_CHECKING:
    from cairn.db import UnitOfWork
    from cairn.provenance.service import Scope

__all__ = [
    "RecordResult",
    "RunStore",
    "end_record",
    "record",
    "record_script",
    "recording",
    "start_record",
]

_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")


@dataclass
class RunStore:
    """Where recorded runs go: transactions, the blob store and a scratch folder.

    Runs are written through the ORM service on ``uow``, or, for the data folder's own SQLite
    database, by ``sqlite`` with the standard library alone (``RunStore.local``; issue #14).
    """

    uow: UnitOfWork | None
    blobs: BlobStore
    work_dir: Path
    organisation_id: str | None = None
    excluded_roots: list[str] = field(default_factory=list)
    sqlite: SqliteRuns | None = None

    def __post_init__(self) -> None:
        if self.sqlite is not None and self.organisation_id is not None:
            raise ValueError("the SQLite writer stores local runs only (no organisation)")

    @classmethod
    @contextmanager
    def local(cls) -> Iterator[RunStore]:
        """The data folder's store (``CAIRN_DATA_DIR`` / ``CAIRN_DATABASE_URL``), migrated."""
        from cairn.blobs import open_blob_store
        from cairn.cli._common import local_blob_store
        from cairn.config import get_settings

        settings = get_settings()
        if "://" in settings.blob_url:  # a plugin's backend, perhaps
            blobs = local_blob_store(settings)
        else:  # a folder is the local store whatever plugins say: skip importing them all
            blobs = open_blob_store(settings.blob_url)
        roots = [str(settings.data_dir)]
        fast = SqliteRuns.open(settings.database_url)
        if fast is not None:  # at the migration heads already: no SQLAlchemy needed
            try:
                yield cls(None, blobs, settings.work_dir, excluded_roots=roots, sqlite=fast)
            finally:
                fast.close()
            return
        import cairn.accounts.models  # noqa: F401  (the runs' organisation foreign key)
        from cairn.cli._common import local_database

        with local_database(every_area=False) as uow:
            yield cls(uow, blobs, settings.work_dir, excluded_roots=roots)

    def start_run(self, draft: RunDraft) -> tuple[int, str]:
        """Write the run's row now (status ``running``); returns its ``(seq, id)``."""
        if self.sqlite is not None:
            return self.sqlite.start_run(draft)
        from cairn.provenance import service

        with self._uow().transaction() as session:
            run = service.start_run(session, draft, organisation_id=self.organisation_id)
            return run.seq, run.id

    def save_run(self, seq: int, draft: RunDraft) -> None:
        """Complete run ``seq`` with the finished draft (call ``archive_files`` first)."""
        if self.sqlite is not None:
            self.sqlite.save_run(seq, draft)
            return
        from cairn.provenance import service

        with self._uow().transaction() as session:
            run = service.get_run(session, seq, scope=_scope(self))
            service.save_run(session, draft, run=run)

    def _uow(self) -> UnitOfWork:
        if self.uow is None:
            raise ValueError("this RunStore has neither a unit of work nor a SQLite writer")
        return self.uow


@dataclass(frozen=True)
class RecordResult:
    run_id: str
    seq: int
    status: str
    exit_code: int


class _Killed(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_killed(signum: int, _frame: FrameType | None) -> None:
    raise _Killed(signum)


@contextmanager
def _signals_end_the_run() -> Iterator[None]:
    """Turn the catchable stop signals into an exception, so the run is closed as killed."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}
    for name in _SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            previous[number] = signal.signal(number, _raise_killed)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class _Session:
    """One recording in progress: its draft, capture and row."""

    def __init__(
        self,
        store: RunStore,
        draft: RunDraft,
        options: CaptureOptions | None,
    ) -> None:
        self.store = store
        self.draft = draft
        base = options or CaptureOptions()  # copied: the caller's options stay as given
        self.stage = store.work_dir / f"record-{uuid.uuid4().hex}"
        self.stage.mkdir(parents=True, exist_ok=True)
        roots = [*base.excluded_roots, *store.excluded_roots, str(self.stage)]
        options = replace(base, excluded_roots=roots)
        self.capture = Capture(
            options, stage_dir=self.stage if options.archive else None, known=store.blobs.exists
        )
        self.options = options
        self.seq, self.run_id = store.start_run(draft)

    def begin(self) -> None:
        self.capture.start()

    def end(self, failure: BaseException | None) -> tuple[str, int]:
        """Stop capturing, then store the run; returns its (status, exit code). The capture
        stops first: formatting the traceback reads source files (``linecache``), and those
        reads are the recorder's, not the run's."""
        used, generated = self.capture.stop()
        status, exit_code, error, tb = _outcome(failure)
        draft = self.draft
        draft.used = [*draft.used, *used]
        draft.generated = generated
        draft.ended_at = utcnow()
        draft.status, draft.exit_code = status, exit_code
        draft.error_message, draft.traceback = error, tb
        files = [*draft.used, *draft.generated]
        try:
            draft.archived = archive_files(self.store.blobs, files)
            self.store.save_run(self.seq, draft)
        finally:
            discard_staged(files)
            shutil.rmtree(self.stage, ignore_errors=True)
        return status, exit_code


def _scope(store: RunStore) -> Scope:
    from cairn.provenance.service import LOCAL, Scope

    if store.organisation_id is None:
        return LOCAL
    return Scope((store.organisation_id,))


def _outcome(exc: BaseException | None) -> tuple[str, int, str | None, str | None]:
    """(status, exit code, error message, traceback) for how the recorded code ended."""
    if exc is None:
        return "ok", 0, None, None
    if isinstance(exc, SystemExit):
        code = exc.code
        if code is None or code == 0:
            return "ok", 0, None, None
        if isinstance(code, int):
            return "error", code, f"exited with status {code}", None
        return "error", 1, str(code), None
    if isinstance(exc, _Killed):
        name = signal.Signals(exc.signum).name
        return "killed", 128 + exc.signum, f"killed by {name}", None
    if isinstance(exc, KeyboardInterrupt):
        return "killed", 128 + signal.SIGINT, "killed by SIGINT", None
    tb = "".join(traceback.format_exception(exc))
    message = f"{type(exc).__name__}: {exc}"
    return "error", 1, message, tb


def record_script(
    script: str | os.PathLike[str],
    *args: str,
    tag: str | Sequence[str] = (),
    store: RunStore,
    options: CaptureOptions | None = None,
) -> RecordResult:
    """Run a Python script as ``__main__`` (``sys.argv`` = script + args) and record it."""
    path = os.path.abspath(script)
    if not os.path.isfile(path):
        from cairn.errors import Invalid

        raise Invalid(f"no such script: {os.fspath(script)!r}")
    if Capture._active is not None:
        raise RecordingActive("A recording is already active in this process.")
    store.work_dir.mkdir(parents=True, exist_ok=True)
    script_version = snapshot(path, "execute", stage_dir=store.work_dir, max_archive_bytes=1 << 62)
    draft = RunDraft(
        kind="script",
        script=script_version.path,
        script_sha256=script_version.sha256,
        arguments=list(args),
        cwd=os.getcwd(),
        tags=_tags(tag),
        env=environment(),
    )
    recorder = _Session(store, draft, options)
    recorder.capture.used[path] = script_version  # runpy's own read of it is not an input
    saved_argv, saved_path0 = sys.argv[:], sys.path[0] if sys.path else None
    sys.argv = [path, *args]
    if sys.path:
        sys.path[0] = os.path.dirname(path)
    failure: BaseException | None = None
    recorder.begin()
    try:
        with _signals_end_the_run():
            runpy.run_path(path, run_name="__main__")
    except BaseException as exc:
        failure = exc
    finally:
        sys.argv = saved_argv
        if saved_path0 is not None:
            sys.path[0] = saved_path0
    status, code = recorder.end(failure)
    return RecordResult(recorder.run_id, recorder.seq, status, code)


def record(
    script: str | os.PathLike[str],
    *args: str,
    tag: str | Sequence[str] = (),
    store: RunStore | None = None,
    options: CaptureOptions | None = None,
) -> str:
    """Run ``script`` with ``args`` and record it; returns the run id (RunManager's record)."""
    if store is not None:
        return record_script(script, *args, tag=tag, store=store, options=options).run_id
    with RunStore.local() as local:
        return record_script(script, *args, tag=tag, store=local, options=options).run_id


def _tags(tag: str | Sequence[str]) -> list[str]:
    return [tag] if isinstance(tag, str) else list(tag)


# --- interactive stretches and blocks --------------------------------------------------------


@dataclass
class _Interactive:
    session: _Session
    history_start: int
    owned_store: Any = None


_current: _Interactive | None = None


def _history_length() -> int:
    try:
        import readline
    except ImportError:
        return 0
    return int(readline.get_current_history_length())


def _history_since(start: int) -> str | None:
    try:
        import readline
    except ImportError:
        return None
    end = readline.get_current_history_length()
    lines = [readline.get_history_item(i) or "" for i in range(start + 1, end + 1)]
    return "\n".join(lines) if lines else None


def start_record(
    tag: str | Sequence[str] = (),
    *,
    store: RunStore | None = None,
    options: CaptureOptions | None = None,
) -> str:
    """Start recording this session's file I/O (RunManager's startRecord); returns the run id.
    The console input typed until ``end_record()`` becomes the run's console log."""
    global _current
    if _current is not None or Capture._active is not None:
        raise RecordingActive("A recording is already active; call end_record() first.")
    owned = None
    if store is None:
        owned = RunStore.local()
        store = owned.__enter__()
    draft = RunDraft(
        kind="console",
        script="console",
        cwd=os.getcwd(),
        tags=_tags(tag),
        env=environment(),
        arguments=sys.argv[1:],
    )
    try:
        recorder = _Session(store, draft, options)
        recorder.begin()
    except BaseException:
        if owned is not None:
            owned.__exit__(None, None, None)
        raise
    _current = _Interactive(recorder, _history_length(), owned)
    return recorder.run_id


def end_record(*, error: BaseException | None = None) -> str:
    """Stop the recording ``start_record`` began and store it; returns the run id."""
    global _current
    if _current is None:
        raise NotRecording("No recording is active; call start_record() first.")
    current, _current = _current, None
    current.session.draft.console_log = _history_since(current.history_start)
    try:
        current.session.end(error)
    finally:
        if current.owned_store is not None:
            current.owned_store.__exit__(None, None, None)
    return current.session.run_id


@contextmanager
def recording(
    tag: str | Sequence[str] = (),
    *,
    store: RunStore | None = None,
    options: CaptureOptions | None = None,
) -> Iterator[str]:
    """Record the block's file I/O as one run (its id is the ``as`` value); an exception
    raised in the block is recorded (status error, traceback) and raised on."""
    run_id = start_record(tag, store=store, options=options)
    if _current is not None:
        _current.session.draft.kind = "block"
        _current.session.draft.script = _caller()
    try:
        yield run_id
    except BaseException as exc:
        end_record(error=exc)
        raise
    end_record()


def _caller() -> str:
    frame = sys._getframe(3)
    return os.path.abspath(frame.f_code.co_filename)
