"""The HTTP client every SDK resource shares: base URL, token, and problem+json → exceptions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from cairn import errors

if TYPE_CHECKING:
    from cairn.client.archive import Archive
    from cairn.client.processing import Processing
    from cairn.client.runs import Runs
    from cairn.client.workspaces import Workspaces
    from cairn.client.xmldb import XmlDatabases

__all__ = ["DEFAULT_API_URL", "DEFAULT_TIMEOUT", "Client"]

DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, read=300.0)


def raise_for_problem(response: httpx.Response) -> None:
    """Turn an error answer back into the ``cairn.errors`` class the server raised, carrying
    the answer's status and problem document."""
    if response.is_success or response.status_code == 304:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = body.get("code")
    cls = (
        errors.error_for_code(str(code)) if code else errors.error_for_status(response.status_code)
    )
    message = body.get("detail") or body.get("reason") or response.reason_phrase
    raise cls(
        str(message), detail=body.get("errors"), status_code=response.status_code, problem=body
    )


class Client:
    """A small typed client for one cairn server.

    Pass ``http_client`` (e.g. FastAPI's ``TestClient``) to talk to an in-process app. Each
    area hangs off it: ``client.workspaces``.
    """

    def __init__(
        self,
        base_url: str = DEFAULT_API_URL,
        *,
        token: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        http_client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self._http = http_client or httpx.Client(base_url=self.base_url, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    @cached_property
    def archive(self) -> Archive:
        """The signed archive: ``client.archive.put("doc.pdf", ["doc.pdf.sig"], ...)``."""
        from cairn.client.archive import Archive

        return Archive(self)

    @cached_property
    def processing(self) -> Processing:
        """Processing: ``client.processing.find_services(org_id, keyword="Elevation")``."""
        from cairn.client.processing import Processing

        return Processing(self)

    @cached_property
    def workspaces(self) -> Workspaces:
        """Upload workspaces: ``client.workspaces.upload("paper.tar.gz")``."""
        from cairn.client.workspaces import Workspaces

        return Workspaces(self)

    @cached_property
    def runs(self) -> Runs:
        """Recorded runs of your organisations: ``client.runs.list(tag=["v1"])``."""
        from cairn.client.runs import Runs

        return Runs(self)

    @cached_property
    def xml(self) -> XmlDatabases:
        """XML databases: ``client.xml.connect("My Lab")`` opens a session (a Connection)."""
        from cairn.client.xmldb import XmlDatabases

        return XmlDatabases(self)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; error answers raise the matching ``cairn.errors`` exception."""
        headers = self._headers(kwargs.pop("headers", None))
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise errors.CairnError(
                f"Cannot reach the cairn server at {self.base_url}: {exc}"
            ) from exc
        raise_for_problem(response)
        return response

    def download(
        self, path: str, target: Path, *, progress: Callable[[int], None] | None = None
    ) -> None:
        """Stream a download to ``target`` (written to a temporary name, then renamed)."""
        partial = target.with_name(target.name + ".part")
        try:
            with self._http.stream("GET", path, headers=self._headers()) as response:
                if not response.is_success:
                    response.read()
                    raise_for_problem(response)
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes(1024 * 1024):
                        out.write(chunk)
                        if progress:
                            progress(len(chunk))
            partial.replace(target)
        except httpx.TransportError as exc:
            raise errors.CairnError(f"Download from {self.base_url} failed: {exc}") from exc
        finally:
            partial.unlink(missing_ok=True)

    def get_json(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def send_json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        response = self.request(method, path, json=body, **kwargs)
        return response.json() if response.content else None

    def paginate(
        self, path: str, params: dict[str, Any] | None = None, *, page_size: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint, fetching pages lazily."""
        page = 1
        while True:
            body = self.get_json(
                path, params={**(params or {}), "page": page, "page_size": page_size}
            )
            yield from body["items"]
            if page * body["page_size"] >= body["total"] or not body["items"]:
                return
            page += 1
