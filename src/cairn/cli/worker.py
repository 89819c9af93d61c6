"""`cairn worker`: a Dask worker for cairn's processing (issue #16, scale-out on Dask)."""

from __future__ import annotations

import os
import shutil
import sys

import typer

__all__ = ["worker"]

PRELOAD = "cairn.processing._dask"


def command_line(
    scheduler: str, *, nworkers: int, nthreads: int, name: str | None, memory_limit: str
) -> list[str]:
    """The ``dask worker`` command line ``cairn worker`` runs."""
    found = shutil.which("dask", path=os.path.dirname(sys.executable)) or shutil.which("dask")
    program = [found] if found else [sys.executable, "-m", "distributed.cli.dask_worker"]
    line = program if found is None else [found, "worker"]
    line += [
        scheduler,
        "--preload",
        PRELOAD,
        "--nworkers",
        str(nworkers),
        "--nthreads",
        str(nthreads),
        "--memory-limit",
        memory_limit,
    ]
    if name:
        line += ["--name", name]
    return line


def worker(
    scheduler: str = typer.Argument(
        None,
        envvar="CAIRN_DASK_SCHEDULER",
        help="The Dask scheduler's address, e.g. tcp://10.0.0.5:8786 (default: "
        "$CAIRN_DASK_SCHEDULER).",
        show_default=False,
    ),
    nworkers: int = typer.Option(
        1, "--nworkers", min=1, help="Worker processes to start (one per core suits CPU work)."
    ),
    nthreads: int = typer.Option(
        1, "--nthreads", min=1, help="Threads per worker process (components run one per thread)."
    ),
    name: str | None = typer.Option(None, "--name", help="A name for the worker (dashboards)."),
    memory_limit: str = typer.Option(
        "auto", "--memory-limit", help="Memory per worker process (e.g. 4GB; 'auto' shares RAM)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the `dask worker` command line instead of running it."
    ),
) -> None:
    """Start a Dask worker that runs cairn's processing components.

    Start the scheduler first (`dask scheduler`), then `cairn serve` with
    CAIRN_DASK_SCHEDULER naming it, and one `cairn worker` per machine.

    The worker preloads GDAL, PROJ, pystac and cairn's built-in services.
    It reads inputs from and writes outputs to the server's blob store, whose URL
    comes with every task: it must reach the same folder (one machine, or a shared
    mount) or the same fsspec URL (s3://bucket/prefix with the s3 extra).

    Same as: dask worker SCHEDULER --preload cairn.processing._dask --nworkers N --nthreads 1
    """
    if not scheduler:
        raise typer.BadParameter(
            "name the scheduler (tcp://host:8786) or set CAIRN_DASK_SCHEDULER",
            param_hint="SCHEDULER",
        )
    line = command_line(
        scheduler, nworkers=nworkers, nthreads=nthreads, name=name, memory_limit=memory_limit
    )
    if dry_run:
        typer.echo(" ".join(line))
        return
    try:
        import distributed  # noqa: F401
    except ImportError:
        typer.echo("cairn worker needs the 'dask' extra: pip install 'cairn[dask]'", err=True)
        raise typer.Exit(1) from None
    os.execv(line[0], line)
