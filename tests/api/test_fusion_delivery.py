"""Dispatchers of part 2 (issue #16) on `/fusion`, as the Fusion SDK sends them, run for real:
``condition`` decides, ``AWS S3`` writes to a real local S3 server (moto's server mode, a
separate process checking IAM credentials), ``Email`` sends through a real local SMTP server
(aiosmtpd) whose mail the tests read, ``Webhook`` POSTs to a real local HTTP server, and
``Storage URL`` writes below an fsspec URL.

Each test runs on SQLite and PostgreSQL (the ``client`` fixture's database), with real
components in worker processes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import fsspec
import pytest
from fastapi.testclient import TestClient

from cairn import hookimpl
from cairn.config import Settings
from cairn.plugins import get_plugin_manager
from cairn.processing.ssd import ComponentSpec, InputSpec, Service
from tests.factories import Member
from tests.processing.fusion_helpers import (
    ELEVATION,
    STATISTICS,
    execute,
    org_path,
    outputs,
    upload_data,
)
from tests.servers import Mailbox, Receiver, S3Server

TRUE = 'input_1_files > 0 and dispatching_service_name == "Elevation"'
FALSE = 'input_1_files > 0 and dispatching_service_name == "Region statistics"'


@pytest.fixture
def configured(settings: Settings, s3_server: S3Server, smtp_server: Mailbox) -> Settings:
    """The app's settings pointing at the local S3 and SMTP servers (before the app starts)."""
    settings.s3_endpoint_url = s3_server.endpoint_url
    settings.smtp_host, settings.smtp_port = smtp_server.host, smtp_server.port
    settings.smtp_from = "cairn@lab.example.org"
    settings.dispatch_webhook_private = True  # the test receiver listens on 127.0.0.1
    return settings


@pytest.fixture
def member(configured: Settings, make_member: Callable[..., Member]) -> Member:
    return make_member(credits=100)


def _offered(client: TestClient, member: Member, service_id: str) -> dict[str, dict[str, Any]]:
    template = client.get(
        f"{org_path(member)}/processes/new",
        params={"service_id": service_id},
        headers=member.headers,
    )
    assert template.status_code == 200, template.text
    return {d["name"]: d for d in template.json()["extras"]["dispatchers"]}


def _dispatcher(
    client: TestClient, member: Member, name: str, service_id: str = ELEVATION, **values: Any
) -> dict[str, Any]:
    """An offered dispatcher with option values set, as the SDK's update sends it."""
    offered = _offered(client, member, service_id)[name]
    intermediate = values.pop("dispatch_intermediate", False)
    options = [
        {**o, "value": values.pop(o["name"])} if o["name"] in values else o
        for o in offered["options"]
    ]
    assert not values, f"{name} has no option(s) {values}"
    return {**offered, "dispatch_intermediate": intermediate, "options": options}


def _create(
    client: TestClient,
    member: Member,
    data_id: str,
    dispatchers: list[Any],
    service_id: str = ELEVATION,
) -> Any:
    template = client.get(
        f"{org_path(member)}/processes/new",
        params={"service_id": service_id},
        headers=member.headers,
    ).json()["model"]
    body = {f"Process[{k}]": v for k, v in template.items() if v is not None}
    body["Process[name]"] = "Delivered"
    body["Process[inputs]"] = [{**i, "id": data_id} for i in template["inputs"]]
    body["Process[dispatchers]"] = dispatchers
    return client.post(f"{org_path(member)}/processes", headers=member.headers, json=body)


def _run(
    client: TestClient, member: Member, dispatchers: list[Any], service_id: str = ELEVATION
) -> dict[str, Any]:
    data_id = upload_data(client, member)
    created = _create(client, member, data_id, dispatchers, service_id)
    assert created.status_code == 200, created.text
    execution = execute(client, member, created.json()["model"]["id"])
    assert execution["success"] is True, execution
    return execution


def _log(client: TestClient, member: Member, execution_id: str) -> list[str]:
    """The execution's last component's log, read as the SDK reads it."""
    base = org_path(member)
    components = client.get(
        f"{base}/process_executions/{execution_id}/process_service_executions",
        headers=member.headers,
    ).json()["list"]
    logs = client.get(
        f"{base}/process_service_executions/{components[-1]['id']}/logs",
        headers=member.headers,
    )
    assert logs.status_code == 200, logs.text
    return [entry["message"] for entry in logs.json()["list"]]


def _keys(s3: S3Server, bucket: str) -> list[str]:
    listed = s3.client().list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def _dispatched_mail(mailbox: Mailbox, address: str) -> list[Any]:
    return [m for m in mailbox.to(address) if str(m["Subject"]).startswith("cairn: outputs")]


def _bucket() -> str:
    return f"cairn-{uuid.uuid4().hex[:12]}"


def test_a_true_condition_delivers_to_a_folder_to_s3_and_by_email_and_a_false_one_does_not(
    client: TestClient, member: Member, configured: Settings, s3_server: S3Server, mailbox: Mailbox
) -> None:
    """The issue's acceptance: the same three dispatchers, once with a condition that holds for
    this execution of Elevation and once with one that does not."""
    bucket = s3_server.bucket(_bucket())
    key, secret = s3_server.key, s3_server.secret
    colleague = "ana@" + member.email.split("@")[1]
    chosen = []
    for condition, where in ((TRUE, "yes"), (FALSE, "no")):
        chosen += [
            _dispatcher(client, member, "Local folder", folder=where, condition=condition),
            _dispatcher(
                client,
                member,
                "AWS S3",
                bucket=bucket,
                prefix=where,
                access_key_id=key,
                secret_access_key=secret,
                condition=condition,
            ),
            _dispatcher(
                client,
                member,
                "Email",
                emails=member.email if where == "yes" else colleague,
                message=f"condition {where}",
                condition=condition,
            ),
        ]
    execution = _run(client, member, chosen)

    made = outputs(client, member, execution["id"])["Elevation"]
    assert configured.dispatch_root is not None
    folder = configured.dispatch_root / "yes" / execution["id"]
    copied = sorted(p for p in folder.rglob("*") if p.is_file())
    assert sorted(p.read_bytes() for p in copied) == sorted(made)
    assert not (configured.dispatch_root / "no").exists()

    keys = _keys(s3_server, bucket)
    assert keys == sorted(
        f"yes/{execution['id']}/{p.relative_to(folder).as_posix()}" for p in copied
    )
    got = sorted(s3_server.client().get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys)
    assert got == sorted(made)

    (mail,) = _dispatched_mail(mailbox, member.email)
    assert "condition yes" in mail.get_body(preferencelist=("plain",)).get_content()
    attached = sorted(part.get_payload(decode=True) for part in mail.iter_attachments())
    assert attached == sorted(made)
    assert not [m for _, m in mailbox.messages() if "condition no" in m.as_string()]

    log = _log(client, member, execution["id"])
    false_lines = [line for line in log if "the condition is false" in line]
    assert sorted(false_lines) == sorted(
        f"Dispatcher '{name}': the condition is false, nothing dispatched"
        for name in ("Local folder", "AWS S3", "Email")
    )
    assert any(line.startswith("Dispatcher 'AWS S3': wrote 2 file(s)") for line in log)


def test_s3_without_credentials_writes_as_the_server_with_owner_control_and_kms(
    client: TestClient,
    member: Member,
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No keys in the options: the server's own identity (here its environment) writes,
    asking for bucket-owner-full-control and SSE-KMS with the given key."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = s3_server.bucket(_bucket())
    arn = s3_server.kms_key()
    chosen = [_dispatcher(client, member, "AWS S3", bucket=bucket, kms_key_id=arn)]
    execution = _run(client, member, chosen)

    keys = _keys(s3_server, bucket)
    assert len(keys) == 2 and all(k.startswith(f"{execution['id']}/1_Elevation/") for k in keys)
    for k in keys:
        head = s3_server.client().head_object(Bucket=bucket, Key=k)
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == arn
        grants = s3_server.client().get_object_acl(Bucket=bucket, Key=k)["Grants"]
        assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]


def test_the_s3_filesystem_asks_for_owner_control_only_without_credentials(
    settings: Settings, blobs: Any
) -> None:
    """What the dispatcher sends with every write (moto stores a canned ACL without showing
    which one, so the request's arguments are checked here)."""
    from cairn.processing._context import DispatchContext
    from cairn.processing.dispatchers._s3 import s3_filesystem

    def fs(**options: Any) -> Any:
        return s3_filesystem(DispatchContext("e", "p", options, [], settings, blobs))

    assert fs(bucket="b").s3_additional_kwargs == {"ACL": "bucket-owner-full-control"}
    assert fs(bucket="b", access_key_id="k", secret_access_key="s").s3_additional_kwargs == {}


def test_s3_with_wrong_credentials_logs_the_failure_and_the_execution_succeeds(
    client: TestClient, member: Member, s3_server: S3Server
) -> None:
    bucket = s3_server.bucket(_bucket())
    secret = "wrong-secret-" + uuid.uuid4().hex
    chosen = [
        _dispatcher(
            client,
            member,
            "AWS S3",
            bucket=bucket,
            access_key_id="AKIAWRONGWRONGWRONG0",
            secret_access_key=secret,
        ),
        _dispatcher(client, member, "Local folder", folder="after"),
    ]
    execution = _run(client, member, chosen)

    assert execution["abort_reason"] is None
    assert _keys(s3_server, bucket) == []
    log = _log(client, member, execution["id"])
    (failure,) = [line for line in log if line.startswith("Dispatcher 'AWS S3' failed:")]
    assert "InvalidAccessKeyId" in failure or "PermissionError" in failure, failure
    assert secret not in "\n".join(log)
    assert any(line.startswith("Dispatcher 'Local folder': copied 2") for line in log)


def test_email_goes_only_to_registered_users_of_the_organisation(
    client: TestClient,
    member: Member,
    make_member: Callable[..., Member],
    mailbox: Mailbox,
) -> None:
    colleague = make_member(organisation_id=member.organisation_id, privilege="view")
    stranger = make_member()  # a registered user, of another organisation
    nobody = f"nobody-{uuid.uuid4().hex[:6]}@example.org"
    emails = f"{colleague.email}, {stranger.email}; {nobody}"
    execution = _run(client, member, [_dispatcher(client, member, "Email", emails=emails)])

    (mail,) = _dispatched_mail(mailbox, colleague.email)
    assert mail["To"] == colleague.email and mail["From"] == "cairn@lab.example.org"
    assert len(list(mail.iter_attachments())) == 2
    assert not _dispatched_mail(mailbox, stranger.email) and not _dispatched_mail(mailbox, nobody)
    log = _log(client, member, execution["id"])
    assert (
        f"Dispatcher 'Email': ignored {stranger.email}, {nobody}: not registered user(s) of "
        "the organisation" in log
    )
    assert f"Dispatcher 'Email': emailed 2 attachment(s) to {colleague.email}" in log


def test_email_above_the_attachment_limit_sends_signed_links_that_download_once(
    client: TestClient, member: Member, configured: Settings, mailbox: Mailbox
) -> None:
    configured.dispatch_email_max_attachment_bytes = 10
    execution = _run(client, member, [_dispatcher(client, member, "Email", emails=member.email)])

    (mail,) = _dispatched_mail(mailbox, member.email)
    assert list(mail.iter_attachments()) == []
    text = mail.get_body(preferencelist=("plain",)).get_content()
    links = re.findall(r"https?://\S+", text)
    assert len(links) == 2
    made = outputs(client, member, execution["id"])["Elevation"]
    fetched = []
    for link in links:
        path = link.removeprefix(configured.base_url)
        answer = client.get(path)
        assert answer.status_code == 200, answer.text
        fetched.append(answer.content)
        assert client.get(path).status_code == 403  # each link works once
    assert sorted(fetched) == sorted(made)


def test_webhook_posts_a_summary_signed_with_hmac(
    client: TestClient, member: Member, receiver: Receiver
) -> None:
    secret = "s3cret-" + uuid.uuid4().hex
    hook = _dispatcher(client, member, "Webhook", url=receiver.url, secret=secret)
    execution = _run(client, member, [hook], service_id=STATISTICS)

    (request,) = receiver.got()
    timestamp = request.headers["X-Cairn-Timestamp"]
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(request.headers["X-Cairn-Signature"], f"sha256={expected}")
    summary = json.loads(request.body)
    assert summary["event"] == "execution.dispatched"
    assert summary["execution_id"] == execution["id"]
    assert summary["service_name"] == "Region statistics"
    assert sorted(f["file_name"] for f in summary["files"]) == [
        "region_statistics.csv",
        "region_statistics.geojson",
    ]
    made = outputs(client, member, execution["id"])["Region statistics"]
    assert sorted(f["sha256"] for f in summary["files"]) == sorted(
        hashlib.sha256(content).hexdigest() for content in made
    )
    log = _log(client, member, execution["id"])
    assert f"Dispatcher 'Webhook': posted 2 file(s) to {receiver.url}: 200" in log


def test_a_webhook_that_answers_an_error_is_logged_and_the_execution_succeeds(
    client: TestClient, member: Member, receiver: Receiver
) -> None:
    receiver.status = 500
    hook = _dispatcher(client, member, "Webhook", STATISTICS, url=receiver.url, secret="x" * 16)
    execution = _run(client, member, [hook], service_id=STATISTICS)
    assert len(receiver.got()) == 1
    assert (
        "Dispatcher 'Webhook' failed: RuntimeError: the webhook answered 500 Internal Server Error"
        in _log(client, member, execution["id"])
    )


def test_a_webhook_to_the_servers_own_network_is_refused_by_default(
    client: TestClient, member: Member, configured: Settings, receiver: Receiver
) -> None:
    configured.dispatch_webhook_private = False
    hook = _dispatcher(client, member, "Webhook", STATISTICS, url=receiver.url, secret="x" * 16)
    execution = _run(client, member, [hook], service_id=STATISTICS)
    assert receiver.got() == []
    (line,) = [x for x in _log(client, member, execution["id"]) if "Webhook" in x]
    assert line.startswith("Dispatcher 'Webhook' failed: RuntimeError: the webhook's host")
    assert "is on the server's own network (127.0.0.1)" in line


def test_storage_url_never_writes_into_the_blob_store() -> None:
    from cairn.processing.dispatchers._url import _inside

    assert _inside("s3://bucket/blobs/x", "s3://bucket/blobs")
    assert _inside("s3://bucket", "s3://bucket/blobs")  # a folder above it
    assert not _inside("s3://bucket/blobs-out", "s3://bucket/blobs")
    assert not _inside("s3://other/blobs", "/srv/cairn/blobs")


def test_storage_url_writes_below_an_fsspec_url(client: TestClient, member: Member) -> None:
    root = f"memory://cairn-{uuid.uuid4().hex[:8]}/out"
    chosen = [_dispatcher(client, member, "Storage URL", STATISTICS, url=root)]
    execution = _run(client, member, chosen, service_id=STATISTICS)

    fs, path = fsspec.core.url_to_fs(root)
    written = sorted(fs.find(f"{path}/{execution['id']}"))
    assert [w.rsplit("/", 1)[1] for w in written] == [
        "region_statistics.csv",
        "region_statistics.geojson",
    ]
    made = outputs(client, member, execution["id"])["Region statistics"]
    assert sorted(fs.cat_file(w) for w in written) == sorted(made)


TWO_STEPS = Service(
    id="0c9a7f54-0000-4000-8000-00000000f001",
    ssd_id="0c9a7f54-0000-4000-8000-00000000f000",
    version=1,
    name="Test: two steps",
    keywords=["Test"],
    categories=["Test"],
    summary="Measures the region twice",
    description="Two components, each making two data items.",
    inputs=[InputSpec(1, "GeoJSON", "Region")],
    options=[],
    components=[
        ComponentSpec("First", "cairn.processing.builtin:run_statistics"),
        ComponentSpec("Second", "cairn.processing.builtin:run_statistics"),
    ],
)


class _TwoSteps:
    @hookimpl
    def register_services(self) -> list[Service]:
        return [TWO_STEPS]


@pytest.fixture
def two_steps() -> Iterator[Service]:
    plugin = _TwoSteps()
    get_plugin_manager().register(plugin, name="delivery-two-steps")
    yield TWO_STEPS
    get_plugin_manager().unregister(plugin)


def test_conditions_see_intermediate_outputs_only_with_dispatch_intermediate(
    client: TestClient, member: Member, two_steps: Service
) -> None:
    root = f"memory://cairn-{uuid.uuid4().hex[:8]}"

    def to(folder: str, condition: str, intermediate: bool) -> dict[str, Any]:
        return _dispatcher(
            client,
            member,
            "Storage URL",
            two_steps.id,
            url=f"{root}/{folder}",
            condition=condition,
            dispatch_intermediate=intermediate,
        )

    chosen = [
        to("all", "inputs == 4 and input_1_files == 1", True),
        to("last", "inputs == 2", False),
        to("never", "inputs == 4", False),  # the last component made only two items
    ]
    execution = _run(client, member, chosen, service_id=two_steps.id)

    fs, path = fsspec.core.url_to_fs(root)
    found = {
        folder: sorted(w.split(f"{execution['id']}/", 1)[1] for w in fs.find(f"{path}/{folder}"))
        for folder in ("all", "last", "never")
    }
    assert [f.split("/")[0] for f in found["all"]] == ["1_First"] * 2 + ["2_Second"] * 2
    assert [f.split("/")[0] for f in found["last"]] == ["2_Second"] * 2
    assert found["never"] == []


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("Storage URL", {"url": "file:///etc"}, "may not name the server's own files"),
        ("Storage URL", {"url": "/etc"}, "an fsspec URL with its protocol"),
        ("Storage URL", {"url": "simplecache::file:///etc"}, "an fsspec URL with its protocol"),
        ("AWS S3", {"bucket": "Not A Bucket"}, "Option 'bucket' is an S3 bucket name"),
        ("AWS S3", {"bucket": "ok-bucket", "access_key_id": "k"}, "go together"),
        ("Email", {"emails": "not-an-address"}, "is not an email address"),
        ("Webhook", {"url": "ftp://x/y", "secret": "x" * 16}, "http:// or https://"),
        ("Webhook", {"url": "http://x/y", "secret": "short"}, "at least 16 characters"),
    ],
)
def test_bad_dispatcher_options_are_refused_at_create(
    client: TestClient, member: Member, name: str, options: dict[str, str], message: str
) -> None:
    data_id = upload_data(client, member)
    chosen = _dispatcher(client, member, name, STATISTICS, **options)
    answer = _create(client, member, data_id, [chosen], STATISTICS)
    assert answer.status_code == 422, answer.text
    assert f"Dispatcher '{name}'" in answer.text and message in answer.text
