"""The ``Email`` dispatcher: mails the outputs to registered users of the organisation.

Addresses that are not the organisation's registered users are ignored, and the ignoring is
a line in the execution's log. Files up to ``CAIRN_DISPATCH_EMAIL_MAX_ATTACHMENT_BYTES`` in
total are attached; above it the email carries a signed download link per file instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cairn.errors import Invalid
from cairn.mail import Attachment, send_mail
from cairn.processing._context import DispatchContext
from cairn.processing.dispatchers._layout import dispatch_path
from cairn.processing.ssd import Dispatcher, OptionSpec

__all__ = ["EMAIL", "dispatch_by_email", "split_emails"]

_EMAIL = re.compile(r"[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+")
MAX_RECIPIENTS = 100


def split_emails(text: str | None) -> list[str]:
    """The addresses of a comma-, semicolon- or space-separated list; ``Invalid`` for one
    that is not an address."""
    found = [part for part in re.split(r"[,;\s]+", text or "") if part]
    for address in found:
        if not _EMAIL.fullmatch(address):
            raise Invalid(f"Option 'emails': {address[:200]!r} is not an email address.")
    if not found:
        raise Invalid("Option 'emails' names at least one recipient.")
    if len(found) > MAX_RECIPIENTS:
        raise Invalid(f"Option 'emails' names at most {MAX_RECIPIENTS} recipients.")
    return list(dict.fromkeys(found))


def _check(options: Mapping[str, Any]) -> None:
    split_emails(options.get("emails"))


def dispatch_by_email(ctx: DispatchContext) -> None:
    """One email to the organisation's users among ``emails``, with the files attached (or
    linked above the size limit)."""
    wanted = split_emails(ctx.options.get("emails"))
    members = [a for a in wanted if a.lower() in ctx.member_emails]
    ignored = [a for a in wanted if a.lower() not in ctx.member_emails]
    if ignored:
        ctx.log(f"ignored {', '.join(ignored)}: not registered user(s) of the organisation")
    if not members:
        ctx.log("sent no email: no recipient is a registered user of the organisation")
        return
    total = sum(f.size for f in ctx.files)
    limit = ctx.settings.dispatch_email_max_attachment_bytes
    lines = [
        f"The execution {ctx.execution_id} of the process '{ctx.process_name}'"
        f"{f' ({ctx.service_name})' if ctx.service_name else ''} succeeded.",
        "",
    ]
    if ctx.options.get("message"):
        lines[:0] = [str(ctx.options["message"]), ""]
    attachments: list[Attachment] = []
    if total <= limit:
        for file in ctx.files:
            with ctx.open(file) as source:
                attachments.append(Attachment(dispatch_path(file).replace("/", "_"), source.read()))
        lines.append(f"{len(ctx.files)} file(s) attached.")
        how = f"{len(attachments)} attachment(s)"
    else:
        lifetime = ctx.settings.dispatch_link_lifetime
        lines.append(
            f"The files ({total} bytes) are larger than this server attaches ({limit} bytes); "
            f"download each once, within {lifetime}, from:"
        )
        lines.extend(f"  {dispatch_path(f)}: {ctx.link(f)}" for f in ctx.files)
        how = f"{len(ctx.files)} link(s)"
    send_mail(
        ctx.settings,
        to=members,
        subject=f"cairn: outputs of '{ctx.process_name}'",
        text="\n".join(lines) + "\n",
        attachments=attachments,
    )
    ctx.log(f"emailed {how} to {', '.join(members)}")


EMAIL = Dispatcher(
    id="7e1a9c3d-2b46-4f80-b5d7-9c1e3a5f7b07",
    ssd_id="7e1a9c3d-2b46-4f80-b5d7-9c1e3a5f7b06",
    version=1,
    name="Email",
    keywords=["Dispatcher", "Email"],
    categories=["Dispatcher"],
    summary="Emails the outputs to users of the organisation.",
    description="After an execution succeeds, emails its outputs to `emails` (comma-separated; "
    "only registered users of the organisation, others are ignored and the ignoring logged), "
    "with the optional `message`. Outputs above the server's attachment limit are sent as "
    "signed download links instead.",
    options=[
        OptionSpec(
            "emails",
            "string",
            title="Emails",
            description="Comma-separated addresses of the organisation's users.",
        ),
        OptionSpec(
            "message",
            "string",
            required=False,
            nullable=True,
            title="Message",
            description="A message to put at the top of the email (optional).",
        ),
    ],
    dispatch=dispatch_by_email,
    check=_check,
)
