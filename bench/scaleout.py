"""Scale-out on Dask (issue #16): 64 executions of a CPU-bound service through the `/fusion` API
on a ``distributed.LocalCluster`` with 1 worker process against 2 worker processes, same run.

A process executes one at a time (a second execute is 409 while one runs), so the 64
executions are of 64 processes made from one service, all executed at once; the wall time is
from the first execute to the last execution ended. Each worker process has one thread. Goal:
speed-up (1 worker / 2 workers) >= 1.7.

Also the scheduler's overhead per execution: a trivial service's executions one after another
on the 1-worker cluster, against the same on the local process pool (median difference, goal
<= 50 ms). The API runs in-process (TestClient, SQLite); workers are real processes. Prints
detail lines, then `scaleout: cairn X (2 workers), baseline Y (1 worker), ratio Z`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _common
from _common import detail, scratch_dir

_common.use_source_tree()

from cairn import hookimpl  # noqa: E402
from cairn.processing._context import ComponentContext  # noqa: E402
from cairn.processing.ssd import ComponentSpec, InputSpec, OptionSpec, Service  # noqa: E402


def _service(number: int, name: str, function: str, options: list[OptionSpec]) -> Service:
    return Service(
        id=f"b0000000-0000-4000-8000-0000000001{number:02d}",
        ssd_id=f"b0000000-0000-4000-8000-0000000000{number:02d}",
        version=1,
        name=name,
        keywords=["Bench"],
        categories=["Bench"],
        summary=name,
        description=name,
        inputs=[InputSpec(1, "GeoJSON", "Region")],
        options=options,
        components=[ComponentSpec(name, f"scaleout:{function}")],
        price="0",
    )


BURN = _service(1, "Bench: burn", "burn", [OptionSpec("loops", "numeric", default="10000000")])
TRIVIAL = _service(2, "Bench: trivial on Dask", "trivial", [])


def burn(ctx: ComponentContext) -> None:
    """Pure-Python arithmetic: CPU-bound, holds the GIL."""
    total = 0
    for i in range(int(ctx.options["loops"])):
        total += i * i % 7
    out = ctx.work_dir / "sum.csv"
    out.write_text(f"sum\n{total}\n")
    ctx.add_output("Sum", "CSV", out)


def trivial(ctx: ComponentContext) -> None:
    out = ctx.work_dir / "one.csv"
    out.write_text("one\n1\n")
    ctx.add_output("One", "CSV", out)


@hookimpl
def register_services() -> list[Service]:
    return [BURN, TRIVIAL]


REGION = json.dumps(
    {
        "type": "Polygon",
        "coordinates": [[[-4.3, 55.85], [-4.2, 55.85], [-4.2, 55.9], [-4.3, 55.85]]],
    }
).encode()


class _Server:
    """An in-process cairn app on an executor, with one user and one uploaded region."""

    def __init__(self, root: Path, executor: Any) -> None:
        from fastapi.testclient import TestClient

        from cairn.accounts import service as accounts
        from cairn.api import create_app
        from cairn.config import Settings
        from cairn.db import UnitOfWork, make_engine, make_sessionmaker, migrate, session_scope
        from cairn.processing._runtime import Runtime

        settings = Settings(data_dir=root / "data")
        self.engine = make_engine(settings)
        migrate(self.engine)
        with session_scope(make_sessionmaker(self.engine)) as session:
            org = accounts.create_organisation(session, name="Bench")
            user = accounts.create_user(
                session, email="bench@example.org", password="Bench-password-1"
            )
            accounts.add_member(session, user=user, organisation=org, privilege="manage")
            token, _, _ = accounts.login(session, email=user.email, password="Bench-password-1")
            self.base = f"/fusion/organisations/{org.id}"
        self.headers = {"Authorization": f"Bearer {token}"}
        app = create_app(settings)
        app.state.processing_runtime = Runtime(
            uow=UnitOfWork(app.state.sessionmaker),
            blobs=app.state.blobs,
            settings=settings,
            executor=executor,
        )
        self.client = TestClient(app).__enter__()
        self.data_id = self._upload()

    def _upload(self) -> str:
        c, base, headers = self.client, self.base, self.headers
        data_id: str = c.post(f"{base}/data", headers=headers, json={"Data[name]": "R"}).json()[
            "model"
        ]["id"]
        extras = c.post(
            f"{base}/data/{data_id}/add_file",
            headers=headers,
            json={"Data": {"name": "r.geojson", "file_type": "GeoJSON"}},
        ).json()["extras"]
        c.put(extras["url"], content=REGION)
        while (
            "publishable"
            not in c.get(f"{base}/data/{data_id}/files", headers=headers).json()["list"][0]
        ):
            time.sleep(0.01)
        return data_id

    def process(self, service: Service, options: dict[str, str] | None = None) -> str:
        c, base, headers = self.client, self.base, self.headers
        template = c.get(
            f"{base}/processes/new", params={"service_id": service.id}, headers=headers
        ).json()["model"]
        body = {f"Process[{k}]": v for k, v in template.items() if v is not None}
        body["Process[name]"] = "Bench"
        body["Process[inputs]"] = [{**template["inputs"][0], "id": self.data_id}]
        if options:
            body["Process[options]"] = [{"name": k, "value": v} for k, v in options.items()]
        answer = c.post(f"{base}/processes", headers=headers, json=body)
        assert answer.status_code == 200, answer.text
        process_id: str = answer.json()["model"]["id"]
        return process_id

    def execute(self, process_id: str) -> str:
        c, base, headers = self.client, self.base, self.headers
        answer = c.post(f"{base}/processes/{process_id}/execute", headers=headers)
        assert answer.status_code == 200, answer.text
        execution_id: str = c.get(
            f"{base}/processes/{process_id}/executions",
            params={"reverse": "True", "limit": 1},
            headers=headers,
        ).json()["list"][0]["id"]
        return execution_id

    def wait(self, execution_id: str, poll: float = 0.01) -> None:
        while True:
            model = self.client.get(
                f"{self.base}/process_executions/{execution_id}", headers=self.headers
            ).json()["model"]
            if model["progress"] >= 100:
                if not model["success"]:
                    raise SystemExit(f"execution failed: {model['abort_reason']}")
                return
            time.sleep(poll)

    def close(self) -> None:
        self.client.__exit__(None, None, None)
        self.engine.dispose()


def _wall(root: Path, workers: int, executions: int, loops: int) -> float:
    """Seconds from the first execute to the last ended, on a cluster of ``workers``."""
    import distributed

    from cairn.processing._dask import DaskExecutor

    with distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=40,
    ) as cluster:
        server = _Server(root / f"wall-{workers}", DaskExecutor(cluster.scheduler_address))
        try:
            warm = server.process(BURN, {"loops": "1000"})  # workers import their libraries
            for _ in range(workers):
                server.wait(server.execute(warm))
            processes = [server.process(BURN, {"loops": str(loops)}) for _ in range(executions)]
            start = time.perf_counter()
            ids = [server.execute(p) for p in processes]
            for execution_id in ids:
                # Polls every 0.1 s: the server shares the 2 cores with the workers, and a
                # 10 ms poll loop would take a core's share from them.
                server.wait(execution_id, poll=0.1)
            return time.perf_counter() - start
        finally:
            server.close()


def _sequential(server: _Server, rounds: int) -> list[float]:
    process_id = server.process(TRIVIAL)
    times = []
    for n in range(rounds + 3):  # three to warm up
        start = time.perf_counter()
        server.wait(server.execute(process_id))
        if n >= 3:
            times.append(time.perf_counter() - start)
    return times


def _noop() -> None:
    return None


def _overhead(root: Path, rounds: int) -> tuple[float, float, float]:
    """Median seconds per trivial execution on the local pool and on Dask (1 worker), and of
    one no-op task's round trip through the scheduler alone."""
    import distributed

    from cairn.processing._dask import DaskExecutor
    from cairn.processing._engine import LocalExecutor

    server = _Server(root / "local", LocalExecutor())
    try:
        local = _sequential(server, rounds)
    finally:
        server.close()
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=40
    ) as cluster:
        server = _Server(root / "dask", DaskExecutor(cluster.scheduler_address))
        try:
            on_dask = _sequential(server, rounds)
        finally:
            server.close()
        trips = []
        with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
            for _ in range(rounds + 3):
                start = time.perf_counter()
                client.submit(_noop, pure=False).result()
                trips.append(time.perf_counter() - start)
    return statistics.median(local), statistics.median(on_dask), statistics.median(trips[3:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executions", type=int, default=64)
    # ~0.4 s of work per execution on a quiet core: with less, the in-process server's own
    # work per execution (execute, recording, polls), on the same 2 cores, caps the speed-up.
    parser.add_argument("--loops", type=int, default=10_000_000, help="work per execution")
    parser.add_argument("--overhead-rounds", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2, help="1-worker/2-worker pairs")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).parent))
    import scaleout  # this file as an importable module: the workers import it too

    from cairn.plugins import get_plugin_manager

    get_plugin_manager().register(scaleout, name="bench-scaleout")
    start = time.perf_counter()
    ctx = ComponentContext(inputs=[[]], options={"loops": args.loops}, work_dir=Path("."))
    ctx.add_output = lambda *a, **k: None  # type: ignore[method-assign]
    ones: list[float] = []
    twos: list[float] = []
    with scratch_dir() as root:
        ctx.work_dir = root
        burn(ctx)
        one = time.perf_counter() - start
        detail(f"one execution's work called directly: {one:.3f} s ({args.loops} loops)")
        for n in range(args.rounds):  # alternate, so both see the same machine
            ones.append(_wall(root / f"r{n}", 1, args.executions, args.loops))
            twos.append(_wall(root / f"r{n}", 2, args.executions, args.loops))
            detail(
                f"round {n + 1}: {args.executions} executions, 1 worker {ones[-1]:.2f} s, "
                f"2 workers {twos[-1]:.2f} s, speed-up {ones[-1] / twos[-1]:.2f} "
                f"({_load()})"
            )
        local, on_dask, trip = _overhead(root, args.overhead_rounds)
    speedups = sorted(a / b for a, b in zip(ones, twos, strict=True))
    detail(
        f"speed-up median {statistics.median(speedups):.2f}, range "
        f"{speedups[0]:.2f}-{speedups[-1]:.2f} (goal >= 1.7)"
    )
    detail(
        f"trivial execution end to end, median of {args.overhead_rounds}: local pool "
        f"{local * 1000:.1f} ms, Dask {on_dask * 1000:.1f} ms (Dask adds "
        f"{(on_dask - local) * 1000:.1f} ms); a no-op task through the scheduler "
        f"{trip * 1000:.1f} ms (goal: scheduler overhead <= 50 ms per execution) ({_load()})"
    )
    one_worker, two_workers = statistics.median(ones), statistics.median(twos)
    print(
        f"scaleout: cairn {two_workers:.2f}s (2 workers), baseline {one_worker:.2f}s (1 worker), "
        f"ratio {one_worker / two_workers:.2f}",
        flush=True,
    )


def _load() -> str:
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
