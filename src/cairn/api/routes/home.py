"""The landing page at ``/``: what this server is, where its API docs are, and the demo login."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from cairn import __version__
from cairn.accounts import service as accounts
from cairn.api.deps import SessionDep, SettingsDep
from cairn.demo import DEMO_EMAIL, DEMO_ORG, DEMO_PASSWORD
from cairn.errors import NotFound

router = APIRouter(tags=["home"])

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cairn</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem;
       line-height: 1.5; color: #222; }}
h1 {{ margin-bottom: 0; }}
code {{ background: #f2f2f2; padding: 0 .25rem; border-radius: 3px; }}
.demo {{ border: 1px solid #c8d8c8; background: #f4faf4; padding: .5rem 1rem; border-radius: 6px; }}
footer {{ margin-top: 2rem; color: #777; font-size: .9rem; }}
</style>
</head>
<body>
<h1>cairn</h1>
<p>A self-hosted research data platform: upload a group's files, process them, seal them into
a long-term archive and say at any time where every file came from.</p>
<h2>Use it</h2>
<ul>
<li><a href="docs">API documentation</a> (Swagger UI: try every call in the browser)</li>
<li><a href="redoc">API reference</a> (ReDoc)</li>
<li><a href="openapi.json">OpenAPI schema</a> (<code>openapi.json</code>, for SDK generators)</li>
<li><a href="healthz">Health</a></li>
</ul>
<p>From the shell: <code>cairn login --api-url {base_url}</code>, then <code>cairn --help</code>.
</p>
{demo}
<footer>cairn {version}</footer>
</body>
</html>
"""

DEMO = """<div class="demo">
<h2>Demo account</h2>
<p>Log in as <code>{email}</code> with password <code>{password}</code>: in the Swagger UI call
<code>POST /api/v1/auth/login</code>, then press <em>Authorize</em> and paste the token.</p>
<p>Or from the shell, after <code>cairn login --email {email}</code>:</p>
<ul>
<li><code>cairn workspace list</code>: the demo paper's workspace, with what its checks found
(<code>cairn workspace removed ID</code> shows what they took out, kept in quarantine);</li>
<li><code>cairn xml query 'collection("metadata")//*:title/string()' --db "{org}"</code>: the
paper's DataCite record and a dataset's EML in the XML database;</li>
<li><code>cairn record my_script.py</code> then <code>cairn runs list</code>: provenance of a
run, what it read and wrote.</li>
</ul>
</div>"""


def _demo_exists(session: SessionDep) -> bool:
    """Whether the account ``cairn admin seed-demo`` (``make run``) creates is there."""
    try:
        accounts.find_user(session, email=DEMO_EMAIL)
    except NotFound:
        return False
    return True


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """The landing page; shows the demo login while the demo user exists."""
    demo = DEMO.format(
        email=escape(DEMO_EMAIL), password=escape(DEMO_PASSWORD), org=escape(DEMO_ORG)
    )
    page = PAGE.format(
        base_url=escape(settings.base_url),
        demo=demo if _demo_exists(session) else "",
        version=escape(__version__),
    )
    return HTMLResponse(page)
