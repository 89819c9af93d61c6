"""The ``AWS S3`` dispatcher: writes the outputs to a bucket through s3fs (the ``s3`` extra).

With ``access_key_id`` and ``secret_access_key`` (and optionally ``session_token``) cairn
writes as that identity; without them it writes with the server's own configured identity
(environment, profile or instance role) and sets ``bucket-owner-full-control``, so the bucket's
owner, whose policy let cairn in, owns what it receives. ``kms_key_id`` asks for SSE-KMS with
that key. ``CAIRN_S3_ENDPOINT_URL`` points the dispatcher at an S3-compatible server.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from typing import Any

from cairn.errors import Invalid
from cairn.processing._context import DispatchContext
from cairn.processing.dispatchers._layout import dispatch_path
from cairn.processing.ssd import Dispatcher, OptionSpec

__all__ = ["AWS_S3", "dispatch_to_s3", "s3_filesystem"]

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _prefix(options: Mapping[str, Any]) -> str:
    prefix = (options.get("prefix") or "").strip().strip("/")
    if ".." in prefix.split("/") or "\\" in prefix or "\x00" in prefix:
        raise Invalid(f"Option 'prefix' is a key prefix without '..'; got {prefix[:200]!r}.")
    return prefix


def _check(options: Mapping[str, Any]) -> None:
    bucket = options.get("bucket") or ""
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise Invalid(
            f"Option 'bucket' is an S3 bucket name (3-63 lower-case letters, digits, '.', '-'); "
            f"got {bucket[:100]!r}."
        )
    if bool(options.get("access_key_id")) != bool(options.get("secret_access_key")):
        raise Invalid("Options 'access_key_id' and 'secret_access_key' go together.")
    if options.get("session_token") and not options.get("access_key_id"):
        raise Invalid("Option 'session_token' needs 'access_key_id' and 'secret_access_key'.")
    _prefix(options)


def s3_filesystem(ctx: DispatchContext) -> Any:
    """An ``s3fs.S3FileSystem`` for the dispatcher's options and the server's endpoint."""
    try:
        import s3fs
    except ImportError as exc:  # pragma: no cover - the s3 extra is part of the test install
        raise RuntimeError("the AWS S3 dispatcher needs s3fs: install cairn[s3]") from exc
    options = ctx.options
    extra: dict[str, str] = {}
    if options.get("kms_key_id"):
        extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=options["kms_key_id"])
    credentials: dict[str, Any] = {}
    if options.get("access_key_id"):
        credentials = {
            "key": options["access_key_id"],
            "secret": options["secret_access_key"],
            "token": options.get("session_token") or None,
        }
    else:
        extra["ACL"] = "bucket-owner-full-control"
    client: dict[str, Any] = {}
    if ctx.settings.s3_endpoint_url:
        client["endpoint_url"] = ctx.settings.s3_endpoint_url
    return s3fs.S3FileSystem(
        **credentials,
        client_kwargs=client,
        s3_additional_kwargs=extra,
        skip_instance_cache=True,
        use_listings_cache=False,
    )


def dispatch_to_s3(ctx: DispatchContext) -> None:
    """Write each file to ``s3://<bucket>/<prefix>/<execution id>/<n>_<component>/<data
    item>/<file>``."""
    bucket = ctx.options["bucket"]
    base = "/".join(p for p in (bucket, _prefix(ctx.options), ctx.execution_id) if p)
    fs = s3_filesystem(ctx)
    for file in ctx.files:
        with ctx.open(file) as source, fs.open(f"{base}/{dispatch_path(file)}", "wb") as out:
            shutil.copyfileobj(source, out, 8 * 1024 * 1024)
    ctx.log(f"wrote {len(ctx.files)} file(s) to s3://{base}/")


def _text(name: str, title: str, description: str, *, required: bool = False) -> OptionSpec:
    return OptionSpec(
        name,
        "string",
        required=required,
        nullable=not required,
        title=title,
        description=description,
    )


AWS_S3 = Dispatcher(
    id="5b7c3e1a-8d24-4f69-9a0e-2c4d6f8b1a03",
    ssd_id="5b7c3e1a-8d24-4f69-9a0e-2c4d6f8b1a02",
    version=1,
    name="AWS S3",
    keywords=["Dispatcher", "S3", "AWS"],
    categories=["Dispatcher"],
    summary="Writes the outputs to an AWS S3 bucket.",
    description="After an execution succeeds, writes its outputs to `bucket` under "
    "`<prefix>/<execution id>/`. With `access_key_id` and `secret_access_key` (and an optional "
    "`session_token`) it writes as that identity; without them it writes as the server's own "
    "identity, which the bucket's policy must allow, and sets bucket-owner-full-control. "
    "`kms_key_id` encrypts the objects with that KMS key (SSE-KMS).",
    options=[
        _text("bucket", "Bucket", "The destination bucket's name.", required=True),
        _text("access_key_id", "Access key id", "Access key id to write with (optional)."),
        _text("secret_access_key", "Secret access key", "Its secret access key."),
        _text("session_token", "Session token", "Session token of temporary credentials."),
        _text("kms_key_id", "KMS key", "ARN or id of a KMS key to encrypt the objects with."),
        _text("prefix", "Prefix", "Key prefix inside the bucket (optional)."),
    ],
    dispatch=dispatch_to_s3,
    check=_check,
)
