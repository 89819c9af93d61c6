"""A real plugin for the tests: services whose component crashes, sleeps, or does nothing."""

from __future__ import annotations

import os
import signal
import time

from cairn import hookimpl
from cairn.processing._context import ComponentContext
from cairn.processing.ssd import ComponentSpec, InputSpec, OptionSpec, Service

CRASH_ID = "0c9a7f54-0000-4000-8000-00000000c001"
SLEEP_ID = "0c9a7f54-0000-4000-8000-00000000c002"

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


def crash(ctx: ComponentContext) -> None:
    ctx.log("about to be killed")
    os.kill(os.getpid(), signal.SIGKILL)


def sleep(ctx: ComponentContext) -> None:
    ctx.log(f"sleeping in pid {os.getpid()}")
    time.sleep(float(ctx.options["seconds"]))


@hookimpl
def register_services() -> list[Service]:
    return [CRASH, SLEEP]
