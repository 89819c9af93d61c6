"""Running calls at the same moment, for race tests (two requests on one object)."""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["race"]


def race(*calls: Callable[[], object]) -> list[BaseException]:
    """Start every call in its own thread behind one barrier, wait for all; what they raised."""
    start = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            start.wait()
            call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
