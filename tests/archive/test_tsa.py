"""cairn's own TSA: generated once into the data folder, served at POST /api/v1/tsa, and
cross-checked with `openssl ts -verify` (an independent implementation)."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

from asn1crypto import tsp
from fastapi.testclient import TestClient

from cairn.archive.tsa import POLICY, TimeStampResponse, open_tsa
from tests.factories import Member


def _openssl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)


def test_openssl_verifies_a_timestamp_from_the_endpoint(
    client: TestClient, make_member: object, tmp_path: Path
) -> None:
    member: Member = make_member()  # type: ignore[operator]
    (tmp_path / "data.txt").write_bytes(b"timestamp me\n")
    made = _openssl(
        "ts", "-query", "-data", "data.txt", "-sha256", "-cert", "-out", "q.tsq", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr
    answer = client.post(
        "/api/v1/tsa",
        headers={**member.headers, "Content-Type": "application/timestamp-query"},
        content=(tmp_path / "q.tsq").read_bytes(),
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/timestamp-reply"
    (tmp_path / "r.tsr").write_bytes(answer.content)
    tsa = open_tsa(client.app.state.settings.data_dir)  # type: ignore[attr-defined]
    verified = _openssl(
        "ts", "-verify", "-queryfile", "q.tsq", "-in", "r.tsr",
        "-CAfile", str(tsa.root_pem), "-untrusted", str(tsa.cert_pem),
        cwd=tmp_path,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Verification: OK" in verified.stdout
    # Other data must not verify against the same reply.
    (tmp_path / "other.txt").write_bytes(b"something else\n")
    wrong = _openssl(
        "ts", "-verify", "-data", "other.txt", "-in", "r.tsr",
        "-CAfile", str(tsa.root_pem), "-untrusted", str(tsa.cert_pem),
        cwd=tmp_path,
    )  # fmt: skip
    assert wrong.returncode != 0


def test_bad_queries_get_a_rejection_not_an_error(client: TestClient, make_member: object) -> None:
    member: Member = make_member()  # type: ignore[operator]
    headers = {**member.headers, "Content-Type": "application/timestamp-query"}
    for body in (b"", b"garbage"):
        answer = client.post("/api/v1/tsa", headers=headers, content=body)
        assert answer.status_code == 200
        status = TimeStampResponse.load(answer.content)["status"]
        assert status["status"].native == "rejection"
        assert "bad_data_format" in status["fail_info"].native
    wrong_size = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": b"short",
            },
        }
    ).dump()
    answer = client.post("/api/v1/tsa", headers=headers, content=wrong_size)
    assert TimeStampResponse.load(answer.content)["status"]["status"].native == "rejection"
    assert client.post("/api/v1/tsa", content=b"").status_code == 401


def test_tokens_carry_nonce_policy_and_unique_serials(tmp_path: Path) -> None:
    tsa = open_tsa(tmp_path)
    imprint = {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x01" * 32}
    request = tsp.TimeStampReq({"version": "v1", "message_imprint": imprint, "nonce": 42})
    infos = []
    for _ in range(2):
        token = TimeStampResponse.load(tsa.respond(request.dump()))["time_stamp_token"]
        infos.append(token["content"]["encap_content_info"]["content"].parsed)
    assert [i["nonce"].native for i in infos] == [42, 42]
    assert infos[0]["policy"].dotted == POLICY
    assert infos[0]["serial_number"].native != infos[1]["serial_number"].native


def test_the_key_is_made_once_even_when_two_start_together(tmp_path: Path) -> None:
    open_tsa.cache_clear()
    results: list[bytes] = []

    def start() -> None:
        results.append(open_tsa.__wrapped__(tmp_path).cert.dump())

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and results[0] == results[1]
    assert sorted(p.name for p in (tmp_path / "archive-tsa").iterdir()) == [
        "root.pem",
        "tsa.key",
        "tsa.pem",
    ]
    assert (tmp_path / "archive-tsa" / "tsa.key").stat().st_mode & 0o077 == 0
    assert [p.name for p in tmp_path.iterdir()] == ["archive-tsa"]  # no staging left
