"""Broker service over real HTTP(S): the secret is required, TLS is pinned by fingerprint, no leaks."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import ssl
from urllib.parse import quote

import pytest

from lakebase_spark import BrokerService, TokenBroker

from ..conftest import ENDPOINT

pytestmark = pytest.mark.postgres


def get(service: BrokerService, path: str, auth: str | None) -> tuple[int, dict[str, object]]:
    if service.tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # pinned below by fingerprint instead, as the JVM does
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            service.host, service.port, context=ctx
        )
    else:
        conn = http.client.HTTPConnection(service.host, service.port)
    headers = {"Authorization": auth} if auth is not None else {}
    conn.request("GET", path, headers=headers)
    if service.tls:  # before the answer: the broker closes the connection after it
        der = conn.sock.getpeercert(binary_form=True)  # type: ignore[union-attr]
        assert hashlib.sha256(der).hexdigest() == service.fingerprint
    resp = conn.getresponse()
    body = json.loads(resp.read())
    conn.close()
    return resp.status, body


def token_path(endpoint: str = ENDPOINT) -> str:
    return f"/v1/token?endpoint={quote(endpoint, safe='')}"


def test_serves_a_token_with_relative_times(broker_service: BrokerService) -> None:
    status, body = get(broker_service, token_path(), f"Bearer {broker_service.secret.reveal()}")
    assert status == 200
    assert isinstance(body["token"], str)
    assert body["token"]
    assert 0 < int(body["refresh_in_ms"]) < int(body["expires_in_ms"]) <= 3600 * 1000  # type: ignore[call-overload]


@pytest.mark.parametrize("auth", [None, "", "Bearer", "Bearer wrong", "Basic abc", "bearer {secret}x"])
def test_rejects_callers_without_the_secret(broker_service: BrokerService, auth: str | None) -> None:
    if auth is not None:
        auth = auth.format(secret=broker_service.secret.reveal())
    status, body = get(broker_service, token_path(), auth)
    assert status == 401
    assert "token" not in body


def test_bad_requests_are_explained(broker_service: BrokerService) -> None:
    auth = f"Bearer {broker_service.secret.reveal()}"
    status, body = get(broker_service, "/v1/token?endpoint=nonsense", auth)
    assert status == 400
    assert "malformed Lakebase endpoint name" in str(body["error"])
    status, body = get(broker_service, "/v1/token", auth)
    assert status == 400
    assert "exactly one" in str(body["error"])
    status, _ = get(broker_service, "/elsewhere", auth)
    assert status == 404


def test_unknown_endpoint_is_404_with_the_reason(workspace) -> None:
    with BrokerService(TokenBroker(workspace)) as service:
        status, body = get(
            service, token_path("projects/x/branches/y/endpoints/z"), f"Bearer {service.secret.reveal()}"
        )
    assert status == 404
    assert "no such resource" in str(body["error"])


def test_tls_broker_with_pinned_fingerprint(workspace, captured_logs) -> None:
    with BrokerService(TokenBroker(workspace), host="127.0.0.1", tls=True) as service:
        assert service.url.startswith("https://")
        assert service.fingerprint is not None
        assert len(service.fingerprint) == 64
        status, body = get(service, token_path(), f"Bearer {service.secret.reveal()}")
        assert status == 200
        token = str(body["token"])
        secret = service.secret.reveal()
    assert token not in captured_logs.text
    assert secret not in captured_logs.text
    assert secret not in repr(service)


def test_off_loopback_defaults_to_tls(workspace) -> None:
    assert BrokerService(TokenBroker(workspace), host="10.1.2.3").tls
    assert not BrokerService(TokenBroker(workspace), host="127.0.0.1").tls
    assert not BrokerService(TokenBroker(workspace), host="localhost").tls


def test_logs_never_hold_the_token_or_secret(broker_service: BrokerService, captured_logs) -> None:
    captured_logs.set_level(logging.DEBUG, logger="lakebase_spark")
    status, body = get(
        broker_service, token_path() + "&force=true", f"Bearer {broker_service.secret.reveal()}"
    )
    assert status == 200
    assert "minted a Lakebase database credential" in captured_logs.text
    # databricks-sdk logged the credential response at DEBUG, with its token redacted.
    assert '"token": "**REDACTED**"' in captured_logs.text
    assert str(body["token"]) not in captured_logs.text
    assert broker_service.secret.reveal() not in captured_logs.text
    assert broker_service.secret.reveal() not in repr(broker_service)


def test_a_herd_of_simultaneous_tls_fetches_all_succeed(workspace) -> None:
    """What a wide stage does when it starts: every executor JVM asks at the same moment. Loopback only,
    clients in processes of their own; bounded in count and time. 2,000 fetches run in bench/ (case 8)."""
    from bench.herd_client import herd

    with BrokerService(TokenBroker(workspace), tls=True) as service:
        path = f"/v1/token?endpoint={quote(ENDPOINT, safe='')}"
        auth = f"Bearer {service.secret.reveal()}"
        assert get(service, path, auth)[0] == 200  # the token is minted once, before the herd
        result = herd(service.host, service.port, path, auth, 500)
        assert result.errors == []
        assert result.failures == 0
        assert len(result.latencies) == result.fetches == 500
        assert service.broker.stats.mints == 1
        assert service.tokens_served == 501


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"POST /v1/token HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /v1/token HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n", 431),
        (b"GET /v1/token HTTP/1.1\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"GET /v1/token HTTP/1.1\r\nHost: x\r\n\r\n", 401),
    ],
)
def test_malformed_requests_get_a_status_not_a_hang(broker_service, request_bytes: bytes, status: int):
    import socket

    with socket.create_connection((broker_service.host, broker_service.port), timeout=5) as sock:
        sock.sendall(request_bytes)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"Connection: close" in answer


def test_post_routes_answer_only_callers_with_the_secret_and_json(workspace) -> None:
    """The catalog's coordination routes (POST, JSON): the same secret as tokens, a JSON object, the
    handler's user errors as 409, anything else as 500 with its type; an unknown POST path is 405."""
    import socket

    from lakebase_spark.errors import WriteInputError

    seen: list[dict] = []

    def handler(request: dict) -> dict:
        seen.append(request)
        if request.get("fail") == "user":
            raise WriteInputError("the table has no column x")
        if request.get("fail") == "bug":
            raise KeyError("oops")
        return {"ok": True}

    with BrokerService(TokenBroker(workspace)) as service:
        service.route("/v1/test", handler)

        def post(path: str, body: bytes, secret: str | None) -> tuple[int, dict]:
            auth = f"Authorization: Bearer {secret}\r\n" if secret else ""
            head = f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {len(body)}\r\n\r\n"
            request = head.encode() + body
            with socket.create_connection((service.host, service.port), timeout=10) as s:
                s.sendall(request)
                answer = b""
                while chunk := s.recv(65536):
                    answer += chunk
            head, _, payload = answer.partition(b"\r\n\r\n")
            return int(head.split()[1]), json.loads(payload)

        secret = service.secret.reveal()
        assert post("/v1/test", b'{"a": 1}', secret) == (200, {"ok": True})
        assert post("/v1/test", b'{"a": 1}', None)[0] == 401
        assert post("/v1/test", b'{"a": 1}', "wrong")[0] == 401
        assert post("/v1/test", b"[1, 2]", secret)[0] == 400
        assert post("/v1/test", b"not json", secret)[0] == 400
        assert post("/v1/test", b'{"fail": "user"}', secret) == (409, {"error": "the table has no column x"})
        status, body = post("/v1/test", b'{"fail": "bug"}', secret)
        assert status == 500
        assert body["error"].startswith("KeyError")
        assert post("/v1/other", b"{}", secret)[0] == 405
        assert seen == [{"a": 1}, {"fail": "user"}, {"fail": "bug"}]
