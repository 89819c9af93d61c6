"""Recorded runs on a server: ``client.runs.list(...)``, ``.get(run_id)``, ``run.trace()``, and
``.upload_published(zip)`` for a package ``cairn runs publish`` wrote."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from cairn.client._model import Resource

__all__ = ["Run", "RunFile", "Runs"]

API = "/api/v1/runs"


class RunFile(Resource):
    """One file version a run used or generated."""

    path: str
    sha256: str | None
    size: int | None
    modified_time: datetime | None = None
    created_time: datetime | None = None
    archived: bool
    flagged: str | None = None
    access: str | None = None


class Run(Resource):
    """A recorded run; ``used`` / ``generated`` are filled by ``Runs.get``."""

    seq: int
    run_id: str
    kind: str
    script: str | None
    tags: list[str]
    start_time: datetime
    end_time: datetime | None
    status: str
    exit_code: int | None
    error_message: str | None
    used: list[RunFile] = []
    generated: list[RunFile] = []

    def trace(self, *, direction: str = "upstream", join: str = "hash") -> dict[str, Any]:
        """The lineage of this run (runs, file versions and the edges between them)."""
        params = {"direction": direction, "join": join}
        answer: dict[str, Any] = self._client.get_json(f"{API}/{self.run_id}/trace", params=params)
        return answer


class Runs:
    """``client.runs``: the runs of your organisations."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def get(self, run_id: str) -> Run:
        return Run.bind(self._client, self._client.get_json(f"{API}/{run_id}"))

    def versions(self, path: str) -> list[dict[str, Any]]:
        """The versions recorded at ``path`` (as runs stored it), oldest first, with the runs
        that generated and used each."""
        answer: list[dict[str, Any]] = self._client.get_json(
            f"{API}/versions", params={"path": path}
        )
        return answer

    def upload_published(
        self, package: str | Path, *, organisation_id: str | None = None
    ) -> dict[str, Any]:
        """Upload a published run's zip: it becomes a read-only run of your organisation.
        Returns ``run`` (the run in full), ``publication_id``, ``identifier``, ``doi`` and
        ``package_sha256``."""
        path = Path(package)
        data = {"organisation_id": organisation_id} if organisation_id else {}
        with path.open("rb") as handle:
            answer: dict[str, Any] = self._client.request(
                "POST", f"{API}/published", files={"file": (path.name, handle)}, data=data
            ).json()
        return answer

    def list(
        self,
        *,
        organisation_id: str | None = None,
        script: str | None = None,
        tag: list[str] | None = None,
        start: str | None = None,
        end: str | None = None,
        error: str | None = None,
        seq: str | None = None,
        order_by: str = "-start_time",
    ) -> Iterator[Run]:
        """Runs selected as RunManager's listRuns does, newest first, page by page."""
        given = {
            "organisation_id": organisation_id,
            "script": script,
            "tag": tag,
            "start": start,
            "end": end,
            "error": error,
            "seq": seq,
            "order_by": order_by,
        }
        params = {name: value for name, value in given.items() if value is not None}
        for item in self._client.paginate(API, params):
            yield Run.bind(self._client, item)
