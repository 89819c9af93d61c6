"""The ``Webhook`` dispatcher: an HTTP POST of a JSON summary of the outputs, signed.

The body is JSON (``event`` ``execution.dispatched``, ``execution_id``, ``process_name``,
``service_name``, ``organisation_id`` and ``files``, each with its component, data item,
name, type, size, SHA-256 and a signed download ``url``). Two headers let the receiver check
it came from this server and was not replayed::

    X-Cairn-Timestamp: 1764806400
    X-Cairn-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body, keyed with `secret`>

A reply other than 2xx (or none within 30 s) fails the dispatch, which the log records, and so
does a host on the server's own network (loopback, private, link-local) unless
``CAIRN_DISPATCH_WEBHOOK_PRIVATE`` allows it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from cairn.errors import Invalid
from cairn.processing._context import DispatchContext
from cairn.processing.ssd import Dispatcher, OptionSpec

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WEBHOOK", "dispatch_to_webhook", "sign_webhook"]

SIGNATURE_HEADER = "X-Cairn-Signature"
TIMESTAMP_HEADER = "X-Cairn-Timestamp"
TIMEOUT = 30.0


def sign_webhook(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Cairn-Signature`` value of a body sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def _check(options: Mapping[str, Any]) -> None:
    url = (options.get("url") or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"Option 'url' is an http:// or https:// URL; got {url[:200]!r}.")
    if len(options.get("secret") or "") < 16:
        raise Invalid("Option 'secret' has at least 16 characters (it keys the signature).")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is a failure: following it would send the summary somewhere not chosen."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _refuse_private(url: str) -> None:
    """A URL whose host resolves to the server's own network is refused: a process must not
    reach services only the server can (cloud metadata, databases, admin pages)."""
    host = urlsplit(url).hostname or ""
    port = urlsplit(url).port or 443
    try:
        found = {
            str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
        }
    except OSError as exc:
        raise RuntimeError(f"the webhook's host {host!r} does not resolve: {exc}") from None
    for address in found:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            raise RuntimeError(
                f"the webhook's host {host!r} is on the server's own network ({ip}); "
                "CAIRN_DISPATCH_WEBHOOK_PRIVATE allows it"
            )


def dispatch_to_webhook(ctx: DispatchContext) -> None:
    """POST the summary to ``url``; the reply's status goes to the log."""
    _check(ctx.options)
    if not ctx.settings.dispatch_webhook_private:
        _refuse_private(ctx.options["url"].strip())
    files = []
    for file in ctx.files:
        entry: dict[str, Any] = {
            "component": file.component,
            "component_number": file.chain_index + 1,
            "data_name": file.data_name,
            "file_name": file.file_name,
            "file_type": file.file_type,
            "size": file.size,
            "sha256": file.sha256,
        }
        with contextlib.suppress(RuntimeError):  # a context without links
            entry["url"] = ctx.link(file)
        files.append(entry)
    body = json.dumps(
        {
            "event": "execution.dispatched",
            "execution_id": ctx.execution_id,
            "process_name": ctx.process_name,
            "service_name": ctx.service_name,
            "organisation_id": ctx.organisation_id,
            "files": files,
        },
        sort_keys=True,
    ).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        ctx.options["url"].strip(),
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "cairn-webhook/1",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign_webhook(ctx.options["secret"], timestamp, body),
        },
    )
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=TIMEOUT) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"the webhook answered {exc.code} {exc.reason}") from None
    ctx.log(f"posted {len(files)} file(s) to {ctx.options['url'].strip()}: {status}")


WEBHOOK = Dispatcher(
    id="3d5f7a9b-1c2e-4a6b-8d0f-4e6a8c0b2d09",
    ssd_id="3d5f7a9b-1c2e-4a6b-8d0f-4e6a8c0b2d08",
    version=1,
    name="Webhook",
    keywords=["Dispatcher", "Webhook", "HTTP"],
    categories=["Dispatcher"],
    summary="POSTs a signed JSON summary of the outputs to a URL.",
    description="After an execution succeeds, POSTs a JSON summary of its outputs (each with a "
    "signed download URL) to `url`, signed with HMAC-SHA256 keyed with `secret` in the "
    "X-Cairn-Signature header over the X-Cairn-Timestamp header, a dot and the body.",
    options=[
        OptionSpec("url", "string", title="URL", description="The http(s) URL to POST to."),
        OptionSpec(
            "secret",
            "string",
            title="Secret",
            description="The key of the HMAC signature (at least 16 characters).",
        ),
    ],
    dispatch=dispatch_to_webhook,
    check=_check,
)
