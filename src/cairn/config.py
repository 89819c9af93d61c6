"""Settings: one ``Settings`` object read from ``CAIRN_*`` env vars and an optional ``cairn.toml``.

Nothing is built at import time: entry points call :func:`get_settings`, tests construct
``Settings(...)`` directly and pass it down.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from platformdirs import user_data_dir
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from cairn.errors import Invalid

__all__ = ["Settings", "get_settings"]


def _toml_path() -> Path:
    return Path(os.environ.get("CAIRN_CONFIG", "cairn.toml"))


def _seconds(default: float, description: str) -> Any:
    """A timeout setting: a positive number of seconds."""
    return Field(default=default, gt=0, description=description)


class Settings(BaseSettings):
    """Every knob of a cairn installation; defaults need nothing configured."""

    model_config = SettingsConfigDict(env_prefix="CAIRN_", extra="ignore")

    data_dir: Path = Field(
        default_factory=lambda: Path(user_data_dir("cairn")),
        description="Folder for the embedded database and the local blob store.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty means SQLite at <data_dir>/cairn.db. "
        "PostgreSQL: postgresql+psycopg://user@host/db.",
    )
    blob_url: str = Field(
        default="",
        description="Blob store location: a folder, or an fsspec URL (file://, memory://, s3://); "
        "empty means <data_dir>/blobs.",
    )
    host: str = Field(default="127.0.0.1", description="Interface `cairn serve` listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `cairn serve` listens on.")
    public_url: str = Field(
        default="",
        description="The address clients reach the server at (behind a reverse proxy, its "
        "https://host); links such as Location headers use it. Empty means http://host:port.",
    )
    token_lifetime: timedelta = Field(
        default=timedelta(days=1), description="How long a login token stays valid."
    )
    executor: Literal["local", "dask"] = Field(
        default="local",
        description="Where processing runs: local process pool or Dask; setting "
        "dask_scheduler alone selects 'dask'.",
    )
    dask_scheduler: str = Field(
        default="",
        description="Dask scheduler address (tcp://host:8786); setting it selects the Dask "
        "executor. Workers need the same database and blob store (blob_url) as the server.",
    )
    dask_fallback_local: bool = Field(
        default=False,
        description="When the Dask scheduler cannot be reached at start, run on the local "
        "process pool instead (logged) rather than refusing to start.",
    )
    dispatch_root: Path | None = Field(
        default=None,
        description="Folder the 'Local folder' dispatcher writes under (a process names a "
        "folder inside it); empty means <data_dir>/dispatch.",
    )
    scheduler_interval: float = _seconds(
        5.0, "Seconds between the rounds of the scheduler in `cairn serve` (due scheduled runs)."
    )
    scheduler_lease: float = _seconds(
        60.0,
        "Seconds the scheduler's leadership lasts unrenewed: another server takes over this "
        "long after the leader stopped without giving it up.",
    )
    storage_credits_per_gib_day: int = Field(
        default=1,
        ge=0,
        description="Credits charged daily per started GiB an organisation stores (uploads "
        "and outputs); 0 stores for free.",
    )
    credit_grace_period: timedelta = Field(
        default=timedelta(days=14),
        description="How long an organisation's balance may stay negative, after its warning, "
        "before its stored outputs are deleted (ISO 8601 duration in the environment: P14D).",
    )
    expiry_warning: timedelta = Field(
        default=timedelta(days=2),
        description="How long before an execution's delete_expiry its organisation is warned "
        "that it and its outputs will be deleted (ISO 8601 duration: P2D).",
    )
    # Email and text messages (issue #16): the Email dispatcher and the notifiers use these.
    smtp_host: str = Field(
        default="",
        description="SMTP server cairn sends email through (notices, the Email dispatcher); "
        "empty means no email is sent.",
    )
    smtp_port: int = Field(default=25, ge=1, le=65535, description="Port of the SMTP server.")
    smtp_from: str = Field(
        default="cairn@localhost", description="Sender address of the email cairn sends."
    )
    smtp_user: str = Field(
        default="", description="User name to log in to the SMTP server with (empty: no login)."
    )
    smtp_password: SecretStr = Field(
        default=SecretStr(""), description="Password to log in to the SMTP server with."
    )
    smtp_starttls: bool = Field(
        default=False, description="Upgrade the SMTP connection with STARTTLS before logging in."
    )
    smtp_timeout: float = _seconds(30.0, "Seconds an SMTP connection or reply may take.")
    sms_webhook_url: str = Field(
        default="",
        description="Text-message gateway: cairn POSTs JSON {to, text} here for each text "
        "message (empty means none is sent).",
    )
    sms_webhook_token: SecretStr = Field(
        default=SecretStr(""),
        description="Bearer token sent to the text-message gateway (empty: none).",
    )
    dispatch_email_max_attachment_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=0,
        description="Largest total of attachments an Email dispatcher sends; above it the "
        "email carries signed download links instead.",
    )
    dispatch_link_lifetime: timedelta = Field(
        default=timedelta(days=7),
        gt=timedelta(0),
        description="How long the download links an Email dispatcher sends stay valid "
        "(each works once).",
    )
    dispatch_webhook_private: bool = Field(
        default=False,
        description="Let Webhook dispatchers POST to loopback, private and link-local "
        "addresses (the server's own network); off, such URLs fail when dispatching.",
    )
    s3_endpoint_url: str = Field(
        default="",
        description="S3 endpoint the AWS S3 dispatcher writes to (a MinIO or other "
        "S3-compatible server); empty means AWS itself.",
    )
    max_request_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="Largest non-upload request body accepted (413 above).",
    )
    max_upload_bytes: int = Field(
        default=8 * 1024**3,
        gt=0,
        description="Largest multipart upload body accepted (413 above).",
    )
    resumable_upload_expiry: timedelta = Field(
        default=timedelta(days=1),
        gt=timedelta(0),
        description="How long an unfinished resumable (tus) upload waits for its next bytes "
        "before it expires (410); `cairn admin gc` then removes it. Each PATCH restarts it.",
    )
    xml_session_idle_timeout: timedelta = Field(
        default=timedelta(minutes=30),
        gt=timedelta(0),
        description="How long an XML database session may go without a request before the "
        "server closes it (its open transaction rolled back, nothing of it applied).",
    )
    xml_preload: bool = Field(
        default=False,
        description="Parse the XML databases' documents in the background when the server "
        "starts, so that the first query after a restart finds them parsed (Saxon cannot "
        "save a parsed tree). Costs the memory of the trees, and the start imports Saxon.",
    )
    max_header_bytes: int = Field(
        default=64 * 1024,
        ge=1024,
        description="Largest request head (request line and header fields) accepted; the "
        "request is answered 431 and the connection closed above.",
    )
    max_headers: int = Field(
        100, ge=1, description="Most header fields a request may carry (431 above)."
    )
    keep_alive_timeout: float = _seconds(
        5.0,
        "Seconds a connection may sit idle (before its first request or between requests) "
        "before the server closes it.",
    )
    header_timeout: float = _seconds(
        20.0,
        "Seconds a client has to send a request's complete head, counted from connecting or "
        "from the previous response (408 and close after).",
    )
    body_timeout: float = _seconds(
        60.0,
        "Seconds a request body may go without sending a byte before the request is cut off "
        "(408 and close); a slow but steady upload is never cut.",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description="Most open client connections; one more is answered 503 and closed at "
        "once. Keep it well under the open-file limit (ulimit -n).",
    )
    backlog: int = Field(2048, ge=1, description="Connections the kernel queues (listen backlog).")
    forwarded_allow_ips: str = Field(
        default="127.0.0.1,::1",
        description="Comma-separated addresses (or networks) of reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto cairn believes; '*' believes every peer.",
    )
    plugins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Plugin modules to import and register besides installed plugins "
        "(e.g. my_site.cairn_hooks); comma-separated or a JSON list.",
    )

    @property
    def base_url(self) -> str:
        """Where clients reach this server, for links: never the request's Host header, which
        the client chooses."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def work_dir(self) -> Path:
        """Scratch space for uploads and packages, on the same filesystem as the data."""
        return self.data_dir / "tmp"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments, then env vars, then cairn.toml.
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_toml_path()),
        )

    @field_validator("plugins", mode="before")
    @classmethod
    def _split_plugins(cls, value: object) -> object:
        # From the environment the list arrives as one string: "a, b" or '["a", "b"]'.
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            return json.loads(value)
        return [name.strip() for name in value.split(",") if name.strip()]

    @model_validator(mode="after")
    def _fill_derived(self) -> Settings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'cairn.db'}"
        elif self.database_url.startswith(("postgresql://", "postgres://")):
            # psycopg 3 is the driver cairn ships; make the bare scheme use it.
            self.database_url = "postgresql+psycopg://" + self.database_url.split("://", 1)[1]
        if not self.blob_url:
            self.blob_url = str(self.data_dir / "blobs")
        root = self.dispatch_root or self.data_dir / "dispatch"
        self.dispatch_root = root.expanduser().resolve()
        if self.dask_scheduler and "executor" not in self.model_fields_set:
            self.executor = "dask"  # CAIRN_DASK_SCHEDULER alone selects Dask (DESIGN.md)
        if self.executor == "dask" and not self.dask_scheduler:
            raise ValueError("executor 'dask' needs dask_scheduler (tcp://host:8786)")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings for entry points (server, CLI); bad values raise ``Invalid``
    naming each offending setting."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise Invalid(
            "Invalid settings (CAIRN_* environment or cairn.toml): " + "; ".join(problems)
        ) from exc
