"""Processing overhead: 200 executions of a trivial service end to end through the `/fusion` API
(execute -> the engine starts a worker process -> outputs stored and analysed -> progress 100
seen by polling), against calling the same component function directly in this process.

Goal (issue #15): overhead <= 50 ms median and <= 150 ms p95 per execution. The API runs
in-process (FastAPI's TestClient over ASGI, SQLite in a temp folder); the worker processes are
real. Prints detail lines, then `processing: cairn X, baseline Y, ratio Z` (medians).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _common
from _common import detail, scratch_dir

_common.use_source_tree()

from cairn import hookimpl  # noqa: E402
from cairn.processing._context import ComponentContext  # noqa: E402
from cairn.processing.ssd import ComponentSpec, InputSpec, Service  # noqa: E402

TRIVIAL = Service(
    id="b0000000-0000-4000-8000-000000000001",
    ssd_id="b0000000-0000-4000-8000-000000000000",
    version=1,
    name="Bench: trivial",
    keywords=["Bench"],
    categories=["Bench"],
    summary="Counts the bytes of its input.",
    description="Counts the bytes of its input and writes the count as CSV.",
    inputs=[InputSpec(1, "GeoJSON", "Region")],
    options=[],
    components=[ComponentSpec("Trivial", "processing:trivial")],
    price="0",
)


def trivial(ctx: ComponentContext) -> None:
    size = sum(path.stat().st_size for path in ctx.inputs[0])
    out = ctx.work_dir / "count.csv"
    out.write_text(f"bytes\n{size}\n")
    ctx.add_output("Count", "CSV", out)


@hookimpl
def register_services() -> list[Service]:
    return [TRIVIAL]


def _direct(region: Path, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            ctx = ComponentContext(inputs=[[region]], options={}, work_dir=Path(folder))
            trivial(ctx)
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--executions", type=int, default=200)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from cairn.accounts import service as accounts
    from cairn.api import create_app
    from cairn.config import Settings
    from cairn.db import make_engine, make_sessionmaker, migrate, session_scope
    from cairn.plugins import get_plugin_manager

    sys.path.insert(0, str(Path(__file__).parent))
    import processing  # this file as an importable module: the workers import it too

    get_plugin_manager().register(processing, name="bench-processing")
    region = json.dumps(
        {
            "type": "Polygon",
            "coordinates": [[[-4.3, 55.85], [-4.2, 55.85], [-4.2, 55.9], [-4.3, 55.85]]],
        }
    ).encode()
    with scratch_dir() as root:
        settings = Settings(data_dir=root / "data")
        engine = make_engine(settings)
        migrate(engine)
        with session_scope(make_sessionmaker(engine)) as session:
            org = accounts.create_organisation(session, name="Bench")
            user = accounts.create_user(
                session, email="bench@example.org", password="Bench-password-1"
            )
            accounts.add_member(session, user=user, organisation=org, privilege="manage")
            token, _, _ = accounts.login(session, email=user.email, password="Bench-password-1")
            org_id = org.id
        headers = {"Authorization": f"Bearer {token}"}
        base = f"/fusion/organisations/{org_id}"
        with TestClient(create_app(settings)) as client:
            data_id = client.post(f"{base}/data", headers=headers, json={"Data[name]": "R"}).json()[
                "model"
            ]["id"]
            extras = client.post(
                f"{base}/data/{data_id}/add_file",
                headers=headers,
                json={"Data": {"name": "r.geojson", "file_type": "GeoJSON"}},
            ).json()["extras"]
            client.put(extras["url"], content=region)
            while (
                "publishable"
                not in client.get(f"{base}/data/{data_id}/files", headers=headers).json()["list"][0]
            ):
                time.sleep(0.01)
            template = client.get(
                f"{base}/processes/new", params={"service_id": TRIVIAL.id}, headers=headers
            ).json()["model"]
            body = {f"Process[{k}]": v for k, v in template.items() if v is not None}
            body["Process[name]"] = "Bench"
            body["Process[inputs]"] = [{**template["inputs"][0], "id": data_id}]
            process_id = client.post(f"{base}/processes", headers=headers, json=body).json()[
                "model"
            ]["id"]
            totals = []
            for n in range(args.executions + 5):  # the first five warm the forkserver up
                start = time.perf_counter()
                client.post(f"{base}/processes/{process_id}/execute", headers=headers)
                newest = client.get(
                    f"{base}/processes/{process_id}/executions",
                    params={"reverse": "True", "limit": 1},
                    headers=headers,
                ).json()["list"][0]["id"]
                while True:
                    execution = client.get(
                        f"{base}/process_executions/{newest}", headers=headers
                    ).json()["model"]
                    if execution["progress"] >= 100:
                        break
                    time.sleep(0.01)
                elapsed = time.perf_counter() - start
                if not execution["success"]:
                    raise SystemExit(f"execution failed: {execution['abort_reason']}")
                if n >= 5:
                    totals.append(elapsed)
        engine.dispose()
    direct = _direct_times(region)
    baseline = statistics.median(direct)
    overheads = sorted(t - baseline for t in totals)
    median = statistics.median(overheads)
    p95 = overheads[int(0.95 * (len(overheads) - 1))]
    detail(f"executions: {len(totals)}; direct call median {baseline * 1000:.2f} ms")
    detail(
        f"overhead per execution: median {median * 1000:.1f} ms (goal <= 50), "
        f"p95 {p95 * 1000:.1f} ms (goal <= 150)"
    )
    cairn = statistics.median(totals)
    # report() prints seconds to two places; these are milliseconds, so print the line here.
    print(
        f"processing: cairn {cairn * 1000:.1f} ms, baseline {baseline * 1000:.2f} ms, "
        f"ratio {cairn / baseline:.0f}",
        flush=True,
    )


def _direct_times(region: bytes) -> list[float]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.geojson"
        path.write_bytes(region)
        return _direct(path, 200)


if __name__ == "__main__":
    main()
