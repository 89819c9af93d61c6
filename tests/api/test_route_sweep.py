"""Every route the app serves, walked as three strangers: no token, a forged token, and a member
of another organisation aiming at a first organisation's real objects.

The routes come from the app itself (the OpenAPI document, compatibility routers included, and
the undocumented HEAD/POST twins), so a new route is walked the day it lands; a route the walk
cannot fill in fails the test until it is taught how.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Route

from cairn.api.deps import ActorDep
from cairn.api.uploads import is_upload_route
from tests.api.sweep_areas import ERROR_SHAPES, SEEDERS, AreaSeed
from tests.factories import Member

# Routes anyone may call. Everything else must answer 401 to a caller without a valid token.
PUBLIC: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "liveness probe for load balancers and `cairn serve --wait`",
    ("GET", "/"): "the landing page: what cairn is, links to the docs",
    ("POST", "/api/v1/auth/login"): "how a token is obtained",
    ("GET", "/openapi.json"): "the API description",
    ("HEAD", "/openapi.json"): "the API description",
    ("GET", "/docs"): "Swagger UI page",
    ("HEAD", "/docs"): "Swagger UI page",
    ("GET", "/docs/oauth2-redirect"): "Swagger UI page",
    ("HEAD", "/docs/oauth2-redirect"): "Swagger UI page",
    ("GET", "/swagger"): "redirect to the Swagger UI, where CryptoPro Archive's users look",
    ("GET", "/redoc"): "ReDoc page",
    ("HEAD", "/redoc"): "ReDoc page",
}
# Routes the sweep does not walk, each with the reason. Keep it empty unless a route cannot
# be called in-process at all.
NOT_WALKED: dict[tuple[str, str], str] = {}
# Routes answering a fixed dictionary, the same for every caller: their integer ``id``s are
# dictionary numbers, not objects, so the id leak check does not apply (the text check does).
FIXED: dict[tuple[str, str], str] = {
    ("GET", "/api/dictionary/statuses"): "the archive's container status numbers 0-8",
    ("GET", "/api/v1/archive/statuses"): "the archive's container status numbers 0-8",
}
# Logging out revokes the caller's token: walked last, so every other call still has one.
LAST = ("POST", "/api/v1/auth/logout")


# --- what the app serves -----------------------------------------------------------------------


def _flatten(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's included routers
        if included is not None:
            yield from _flatten(included.routes)
        else:
            yield route


def served_routes(app: FastAPI) -> dict[tuple[str, str], BaseRoute]:
    """Every (method, path template) the app answers, documented or not."""
    found: dict[tuple[str, str], BaseRoute] = {}
    for route in _flatten(app.routes):
        if isinstance(route, APIRoute | Route):
            template = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)  # {path:path} -> {path}
            for method in route.methods or ():
                found[(method, template)] = route
    return found


def documented(app: FastAPI) -> dict[tuple[str, str], dict[str, Any]]:
    """Every operation of the OpenAPI document."""
    return {
        (method.upper(), path): operation
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
    }


# --- the first organisation's objects and the requests aimed at them -------------------------


@dataclass
class Target:
    """The first organisation: its member and every area's objects (see ``sweep_areas``)."""

    member: Member
    seeds: list[AreaSeed]

    @property
    def fill(self) -> dict[str, str]:
        return {name: value for seed in self.seeds for name, value in seed.fill.items()}

    @property
    def identifiers(self) -> set[str]:
        return {identifier for seed in self.seeds for identifier in seed.identifiers}

    @property
    def owned_ids(self) -> set[Any]:
        return {owned for seed in self.seeds for owned in seed.owned_ids}


def _value(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """A small valid value of a JSON schema (the first branch of a union, the first enum)."""
    if "$ref" in schema:
        return _value(components[schema["$ref"].rsplit("/", 1)[-1]], components)
    for union in ("anyOf", "oneOf", "allOf"):
        if union in schema:
            branches = [s for s in schema[union] if s.get("type") != "null"]
            return _value(branches[0], components)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {
            name: _value(sub, components)
            for name, sub in schema.get("properties", {}).items()
            if name in schema.get("required", [])
        }
    if kind == "string":
        if schema.get("format") == "email":
            return "someone@example.org"
        if schema.get("format") == "date-time":
            return "2100-01-01T00:00:00+00:00"
        return "x" * max(1, schema.get("minLength", 1))
    if kind in ("integer", "number"):
        return max(1, schema.get("minimum", 1))
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    raise AssertionError(f"no value for schema {schema}: teach test_route_sweep._value")


@dataclass
class Probe:
    method: str
    template: str
    url: str
    kwargs: dict[str, Any]
    names_target: bool  # the request names one of the first organisation's objects
    unaimed: dict[str, Any] | None = None  # the same request naming none, if the path doesn't


def build_probe(
    method: str,
    template: str,
    operation: dict[str, Any] | None,
    route: BaseRoute | None,
    target: Target,
    components: dict[str, Any],
) -> Probe:
    """The request for one route, its path, query and body filled from ``target``."""
    fill = target.fill
    parameters = {p["name"]: p for p in (operation or {}).get("parameters", [])}
    url, names_target = template, False
    for name in _path_names(template):
        schema = parameters.get(name, {}).get("schema", {})
        if name in fill:
            value, names_target = fill[name], True
        elif "enum" in schema:
            value = schema["enum"][0]
        else:
            raise AssertionError(f"{method} {template}: no value for path parameter '{name}'")
        url = url.replace(f"{{{name}}}", value)
    in_path = names_target
    kwargs: dict[str, Any] = {}
    unaimed: dict[str, Any] = {}
    query = {
        name: fill[name] for name, p in parameters.items() if p["in"] == "query" and name in fill
    }
    required = [n for n, p in parameters.items() if p.get("required") and p["in"] == "query"]
    for name in required:
        query.setdefault(name, _value(parameters[name]["schema"], components))
    if query:
        kwargs["params"] = query
        unaimed["params"] = {k: v for k, v in query.items() if k not in fill}
        names_target = names_target or any(n in fill for n in query)
    content = (operation or {}).get("requestBody", {}).get("content", {})
    if "multipart/form-data" in content or is_upload_route(route):
        form = {"organisation_id": fill["organisation_id"]}
        schema = content.get("multipart/form-data", {}).get("schema", {})
        kwargs["data"] = {k: v for k, v in form.items() if k in schema.get("properties", {})}
        kwargs["files"] = unaimed["files"] = {"file": ("probe.txt", b"a small probe file\n")}
        names_target = names_target or bool(kwargs["data"])
    elif "application/json" in content:
        schema = content["application/json"]["schema"]
        body = _value(schema, components)
        unaimed["json"] = dict(body)
        resolved = _resolve(schema, components)
        for name in fill.keys() & resolved.get("properties", {}).keys():
            body[name], names_target = fill[name], True
        kwargs["json"] = body
    elif content:
        raise AssertionError(f"{method} {template}: teach the sweep to build {list(content)}")
    elif isinstance(route, APIRoute) and route.body_field is not None:
        raise AssertionError(f"{method} {template}: undocumented body; document it")
    aimed_elsewhere = names_target and not in_path
    return Probe(method, template, url, kwargs, names_target, unaimed if aimed_elsewhere else None)


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        resolved: dict[str, Any] = components[schema["$ref"].rsplit("/", 1)[-1]]
        return resolved
    return schema


def _path_names(template: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", template)


# --- the sweep ---------------------------------------------------------------------------------


def _is_problem(answer: httpx.Response, code: str | None = None) -> str | None:
    """Why ``answer`` is not a problem+json error (with ``code``), or None."""
    if not answer.headers.get("content-type", "").startswith("application/problem+json"):
        return f"content-type {answer.headers.get('content-type')!r}, not problem+json"
    if answer.request.method == "HEAD":
        return None
    body = answer.json()
    if not isinstance(body.get("code"), str):
        return f"no code in {body}"
    if code is not None and body["code"] != code:
        return f"code {body['code']!r}, expected {code!r}"
    return None


def _listed(body: Any) -> list[Any]:
    """The items of a listing, in cairn's shape (``items``) or a compat one (``list``, ``data``)."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in ("items", "list", "data"):
            if isinstance(body.get(key), list):
                items: list[Any] = body[key]
                return items
    return []


def _leaks(answer: httpx.Response, target: Target) -> str | None:
    """Whether an answer shows any of the first organisation's objects."""
    for identifier in target.identifiers:
        if identifier in answer.text:
            return f"shows {identifier!r}"
    if answer.content and "json" in answer.headers.get("content-type", ""):
        for item in _listed(answer.json()):
            if isinstance(item, dict) and (
                item.get("id") in target.owned_ids
                or item.get("organisation_id") == target.member.organisation_id
            ):
                return f"lists {item}"
    return None


def _state(target: Target) -> list[Any]:
    """What the first organisation sees of its objects; no stranger's call may change it."""
    return [seed.state() for seed in target.seeds]


@pytest.fixture
def target(client: TestClient, make_member: Callable[..., Member]) -> Target:
    member = make_member(credits=5, email=f"first-{secrets.token_hex(4)}@example.org")
    return Target(member, [seed(client, member) for seed in SEEDERS])


CALLERS = ["no token", "forged token", "other organisation"]


def sweep(
    app: FastAPI, client: TestClient, caller: str, headers: dict[str, str], target: Target
) -> tuple[set[tuple[str, str]], list[str]]:
    """Call every served route once as ``caller``; returns what was walked and what was wrong."""
    served = served_routes(app)
    operations = documented(app)
    components = app.openapi().get("components", {}).get("schemas", {})
    walked: set[tuple[str, str]] = set()
    failures: list[str] = []
    for method, template in sorted(served.keys() - NOT_WALKED.keys(), key=lambda k: (k == LAST, k)):
        probe = build_probe(
            method,
            template,
            operations.get((method, template)),
            served[(method, template)],
            target,
            components,
        )
        answer = client.request(method, probe.url, headers=headers, **probe.kwargs)
        walked.add((method, template))
        if problem := _judge(caller, probe, answer, target):
            failures.append(f"{method} {probe.url} -> {answer.status_code}: {problem}")
        if probe.unaimed is not None and caller == "other organisation":
            # A listing or a create without the first organisation's id: own objects only.
            plain = client.request(method, probe.url, headers=headers, **probe.unaimed)
            if plain.status_code >= 500 or (problem := _leaks(plain, target)):
                failures.append(f"{method} {probe.url} (unaimed) -> {plain.status_code}: {problem}")
    return walked, failures


def _headers(caller: str, make_member: Callable[..., Member]) -> dict[str, str]:
    if caller == "no token":
        return {}
    if caller == "forged token":
        return {"Authorization": f"Bearer {secrets.token_urlsafe(32)}"}
    return make_member().headers


@pytest.mark.parametrize("caller", CALLERS)
def test_every_route_refuses_strangers(
    caller: str,
    app: FastAPI,
    client: TestClient,
    make_member: Callable[..., Member],
    target: Target,
) -> None:
    served = served_routes(app)
    operations = documented(app)
    assert operations.keys() <= served.keys(), "the OpenAPI documents a route the app lacks"
    assert PUBLIC.keys() | NOT_WALKED.keys() <= served.keys(), "a stale PUBLIC or NOT_WALKED entry"
    before = _state(target)

    walked, failures = sweep(app, client, caller, _headers(caller, make_member), target)

    # Every documented operation, compatibility routers included, and every undocumented twin.
    assert walked == served.keys() - NOT_WALKED.keys()
    assert walked >= operations.keys() - NOT_WALKED.keys()
    assert not failures, "\n".join(failures)
    assert _state(target) == before, "a stranger's call changed the first organisation"


@pytest.mark.parametrize("caller", CALLERS)
def test_the_sweep_catches_a_route_that_lets_strangers_in(
    caller: str,
    app: FastAPI,
    client: TestClient,
    make_member: Callable[..., Member],
    target: Target,
) -> None:
    """A new route that forgets the actor (or the organisation check) is walked and reported."""

    @app.get("/api/v1/leaky/{organisation_id}")
    def leaky(organisation_id: str) -> dict[str, str]:
        return {"organisation_id": organisation_id}

    @app.get("/api/v1/careless/{organisation_id}")
    def careless(organisation_id: str, actor: ActorDep) -> dict[str, str]:
        return {"organisation_id": organisation_id}

    app.openapi_schema = None  # the document is cached; the new routes must appear in it
    walked, failures = sweep(app, client, caller, _headers(caller, make_member), target)
    assert ("GET", "/api/v1/leaky/{organisation_id}") in walked
    reported = {failure.split(" ->")[0] for failure in failures}
    org = target.member.organisation_id
    assert f"GET /api/v1/leaky/{org}" in reported
    assert (f"GET /api/v1/careless/{org}" in reported) == (caller == "other organisation")


def test_the_sweep_refuses_a_route_it_cannot_fill(
    app: FastAPI, client: TestClient, target: Target
) -> None:
    @app.get("/api/v1/gadgets/{gadget_id}")
    def gadget(gadget_id: str) -> dict[str, str]:
        return {}

    app.openapi_schema = None
    with pytest.raises(AssertionError, match="gadget_id"):
        sweep(app, client, "no token", {}, target)


def _error_shape(template: str) -> Callable[[httpx.Response], str | None]:
    """The checker of a route's error shape: its compat router's, or problem+json."""
    for prefix, checker in ERROR_SHAPES.items():
        if template.startswith(prefix):
            return checker
    return _is_problem


def _judge(caller: str, probe: Probe, answer: httpx.Response, target: Target) -> str | None:
    """What is wrong with ``answer`` to ``caller`` (None when it is right)."""
    key = (probe.method, probe.template)
    if answer.status_code >= 500:
        return f"server error {answer.text[:200]}"
    shape = _error_shape(probe.template)
    if answer.status_code >= 400 and (why := shape(answer)):
        return why
    if key in PUBLIC:
        return _leaks(answer, target)
    if caller != "other organisation":
        if answer.status_code != 401:
            return "expected 401"
        if answer.headers.get("WWW-Authenticate") != "Bearer":
            return "401 without WWW-Authenticate: Bearer"
        return _is_problem(answer, "unauthorized") if shape is _is_problem else None
    if probe.names_target:
        return None if answer.status_code == 404 else "expected 404 for another organisation's id"
    if key in FIXED:
        return next((f"shows {i!r}" for i in target.identifiers if i in answer.text), None)
    return _leaks(answer, target)
