"""The Dask executor on a real ``distributed.LocalCluster`` with worker processes (issue #16).

One small cluster per module (two worker processes, one thread each); the scheduler gives a
task up after its worker died twice (``allowed-failures`` 1), so a crashing component fails in
two worker restarts rather than four. Both databases, through the ``/fusion`` API in-process.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from fastapi.testclient import TestClient

from cairn.config import Settings
from cairn.db import UnitOfWork
from cairn.processing import _dask
from cairn.processing._dask import DaskExecutor, SchedulerUnreachable
from cairn.processing._engine import LocalExecutor, make_executor
from cairn.processing._runtime import Runtime
from tests.factories import Member
from tests.processing import plugin_services
from tests.processing.fusion_helpers import (
    create_process,
    execute,
    org_path,
    outputs,
    upload_data,
    wait_execution,
    wait_for_log,
)

distributed = pytest.importorskip("distributed", reason="the 'dask' extra is not installed")
import dask  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        local = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: two test workers may each run a cluster
            worker_dashboard_address=None,
            silence_logs=40,
        )
    yield local
    local.close()


@pytest.fixture
def client(app: Any, cluster: Any) -> Iterator[TestClient]:
    """The app, its runtime on the cluster."""
    state = app.state
    state.processing_runtime = Runtime(
        uow=UnitOfWork(state.sessionmaker),
        blobs=state.blobs,
        settings=state.settings,
        executor=DaskExecutor(cluster.scheduler_address),
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def member(make_member: Callable[..., Member]) -> Member:
    return make_member(credits=5)


def _worker_pids(cluster: Any) -> set[int]:
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as c:
        return set(c.run(os.getpid).values())


@pytest.mark.usefixtures("test_services")
def test_an_execution_runs_on_a_dask_worker_and_its_logs_come_back(
    client: TestClient, member: Member, cluster: Any
) -> None:
    data_id = upload_data(client, member)
    process = create_process(
        client,
        member,
        data_id,
        service_id=plugin_services.SLEEP_ID,
        options=[{"name": "seconds", "value": "0"}],
    )
    execution = execute(client, member, process["id"])
    assert execution["success"] is True, execution["abort_reason"]
    # Log lines travel as Dask events; one may land a moment after the execution ended.
    line = wait_for_log(client, member, execution["id"], "sleeping in pid ", timeout=10)
    pid = int(line.rsplit(" ", 1)[1])
    assert pid != os.getpid() and pid in _worker_pids(cluster)


def test_a_built_in_service_on_dask_stores_outputs_the_server_serves(
    client: TestClient, member: Member
) -> None:
    data_id = upload_data(client, member)
    process = create_process(client, member, data_id)  # Region statistics
    execution = execute(client, member, process["id"])
    assert execution["success"] is True, execution["abort_reason"]
    files = [f for contents in outputs(client, member, execution["id"]).values() for f in contents]
    assert files and all(files)


@pytest.mark.usefixtures("test_services")
def test_a_worker_killed_mid_task_is_retried_on_another(
    client: TestClient, member: Member, tmp_path: Path
) -> None:
    marker = tmp_path / "crashed-once"
    data_id = upload_data(client, member)
    process = create_process(
        client,
        member,
        data_id,
        service_id=plugin_services.CRASH_ONCE_ID,
        options=[{"name": "marker", "value": str(marker)}],
    )
    execution = execute(client, member, process["id"])
    assert marker.exists()  # the first attempt killed its worker
    assert execution["success"] is True, execution["abort_reason"]
    wait_for_log(client, member, execution["id"], "ran again in pid ", timeout=10)


@pytest.mark.usefixtures("test_services")
def test_a_task_that_kills_every_worker_fails_the_execution_with_a_reason(
    client: TestClient, member: Member
) -> None:
    data_id = upload_data(client, member)
    process = create_process(client, member, data_id, service_id=plugin_services.CRASH_ID)
    execution = execute(client, member, process["id"])
    assert execution["success"] is False and execution["abort"] is True
    assert "The Dask worker running it died" in execution["abort_reason"]


@pytest.mark.usefixtures("test_services")
def test_stop_on_dask_stops_the_running_component_for_real(
    client: TestClient, member: Member
) -> None:
    data_id = upload_data(client, member)
    process = create_process(client, member, data_id, service_id=plugin_services.SLEEP_ID)
    base = f"{org_path(member)}/processes/{process['id']}"
    assert client.post(f"{base}/execute", headers=member.headers).status_code == 200
    execution_id = client.get(f"{base}/executions", headers=member.headers).json()["list"][0]["id"]
    pid = int(wait_for_log(client, member, execution_id, "sleeping in pid ").rsplit(" ", 1)[1])
    assert client.post(f"{base}/stop", headers=member.headers).status_code == 200
    ended = wait_execution(client, member, execution_id)
    assert ended["success"] is False and ended["abort_reason"] == "Stopped by a user."
    deadline = time.monotonic() + 30
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.1)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_an_unreachable_scheduler_is_a_clear_error_or_the_local_pool_if_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_dask, "CONNECT_TIMEOUT", 1.0)
    address = f"tcp://127.0.0.1:{_free_port()}"
    settings = Settings(data_dir=tmp_path, dask_scheduler=address)
    assert settings.executor == "dask"  # the scheduler's address alone selects Dask
    with pytest.raises(SchedulerUnreachable, match="cannot be reached"):
        make_executor(settings)
    fallback = make_executor(settings.model_copy(update={"dask_fallback_local": True}))
    try:
        assert isinstance(fallback, LocalExecutor)
    finally:
        fallback.shutdown()


def test_executor_dask_without_a_scheduler_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs dask_scheduler"):
        Settings(data_dir=tmp_path, executor="dask")
    assert Settings(data_dir=tmp_path).executor == "local"
    explicit = Settings(data_dir=tmp_path, executor="local", dask_scheduler="tcp://h:8786")
    assert explicit.executor == "local"  # an explicit choice wins


def test_cairn_serve_refuses_to_start_without_its_scheduler(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {
        **os.environ,
        "CAIRN_DATA_DIR": str(tmp_path / "data"),
        "CAIRN_DASK_SCHEDULER": f"tcp://127.0.0.1:{_free_port()}",
        "CAIRN_PORT": str(_free_port()),
    }
    env.pop("CAIRN_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "cairn.cli.main", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "cannot be reached" in done.stderr and "CAIRN_DASK_FALLBACK_LOCAL" in done.stderr
    assert "cairn serving" not in done.stderr
