"""A real plugin for the tests: services whose component crashes or sleeps, and a dispatcher
whose far end always refuses (no network: it raises before it would send anything)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from cairn import hookimpl
from cairn.processing._context import ComponentContext, DispatchContext
from cairn.processing.ssd import ComponentSpec, Dispatcher, InputSpec, OptionSpec, Service

CRASH_ID = "0c9a7f54-0000-4000-8000-00000000c001"
SLEEP_ID = "0c9a7f54-0000-4000-8000-00000000c002"
CRASH_ONCE_ID = "0c9a7f54-0000-4000-8000-00000000c003"
REFUSING_SSD_ID = "0c9a7f54-0000-4000-8000-00000000d000"
VERSIONED_SSD_ID = "0c9a7f54-0000-4000-8000-00000000e000"

_REGION = InputSpec(1, "GeoJSON", "Region")


def _service(service_id: str, name: str, function: str, **extra: object) -> Service:
    return Service(
        id=service_id,
        ssd_id=service_id[:-1] + "0",
        version=1,
        name=name,
        keywords=["Test"],
        categories=["Test"],
        summary=name,
        description=name,
        inputs=[_REGION],
        components=[ComponentSpec(name, f"tests.processing.plugin_services:{function}")],
        **{"options": [], **extra},  # type: ignore[arg-type]
    )


CRASH = _service(CRASH_ID, "Test: crash", "crash")
SLEEP = _service(
    SLEEP_ID,
    "Test: sleep",
    "sleep",
    options=[OptionSpec("seconds", "numeric", default="60", validation="min=0;max=600")],
)
CRASH_ONCE = _service(
    CRASH_ONCE_ID,
    "Test: crash once",
    "crash_once",
    options=[OptionSpec("marker", "string", default="")],
)

# Two versions of one SSD, running the built-in region measures.
VERSIONED = [
    Service(
        id=f"{VERSIONED_SSD_ID[:-1]}{version}",
        ssd_id=VERSIONED_SSD_ID,
        version=version,
        name="Test: versioned",
        keywords=["Test"],
        categories=["Test"],
        summary=f"Version {version}",
        description=f"Version {version}",
        inputs=[_REGION],
        options=[],
        components=[ComponentSpec("Measure", "cairn.processing.builtin:run_statistics")],
    )
    for version in (1, 2)
]


def crash(ctx: ComponentContext) -> None:
    ctx.log("about to be killed")
    os.kill(os.getpid(), signal.SIGKILL)


def crash_once(ctx: ComponentContext) -> None:
    """Kills its worker the first time (it leaves the ``marker`` file behind), then succeeds."""
    marker = Path(str(ctx.options["marker"]))
    if not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    ctx.log(f"ran again in pid {os.getpid()}")
    out = ctx.work_dir / "again.csv"
    out.write_text("again\n1\n")
    ctx.add_output("Again", "CSV", out)


def sleep(ctx: ComponentContext) -> None:
    ctx.log(f"sleeping in pid {os.getpid()}")
    time.sleep(float(ctx.options["seconds"]))


@hookimpl
def register_services() -> list[Service]:
    return [CRASH, SLEEP, CRASH_ONCE, *VERSIONED]


def refuse(ctx: DispatchContext) -> None:
    raise RuntimeError(f"the far end refused {len(ctx.files)} file(s)")


REFUSING = Dispatcher(
    id=REFUSING_SSD_ID[:-1] + "1",
    ssd_id=REFUSING_SSD_ID,
    version=1,
    name="Test: refusing",
    keywords=["Test"],
    categories=["Dispatcher"],
    summary="Always fails.",
    description="Always fails.",
    options=[OptionSpec("attempts", "numeric", default="1", validation="min=1;max=5")],
    dispatch=refuse,
)


@hookimpl
def register_dispatchers() -> list[Dispatcher]:
    return [REFUSING]
