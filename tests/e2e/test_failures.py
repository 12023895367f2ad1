"""When the upstream cannot be reached or trusted: the client gets an error, the audit one row."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import (
    FakeProvider,
    Gateway,
    free_port,
    start_fake_provider,
    start_gateway,
    stop,
    user_client,
)

pytestmark = pytest.mark.e2e

UNTRUSTED = "api.mistral.ai"  # sent to a fake provider whose CA the gateway does not trust
UNREACHABLE = "api.groq.com"  # sent to a port nobody listens on


@pytest.fixture(scope="module")
def impostor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeProvider]:
    fake, proc = start_fake_provider(tmp_path_factory.mktemp("impostor-tls"))
    try:
        yield fake
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def failing_gateway(
    tmp_path_factory: pytest.TempPathFactory, fake_provider: FakeProvider, impostor: FakeProvider
) -> Iterator[Gateway]:
    gateway, proc = start_gateway(
        tmp_path_factory.mktemp("failing-gateway"),
        fake_provider,
        extra_args=[
            "--upstream",
            f"{UNTRUSTED}=127.0.0.1:{impostor.port}",
            "--upstream",
            f"{UNREACHABLE}=127.0.0.1:{free_port()}",
        ],
    )
    try:
        yield gateway
    finally:
        stop(proc)


def chat(mark: str) -> dict:
    return {"model": "mistral-small-latest", "messages": [{"role": "user", "content": mark}]}


def test_an_upstream_certificate_the_gateway_does_not_trust_is_refused(failing_gateway, impostor):
    mark = f"mark{uuid.uuid4().hex[:12]}"
    with user_client(failing_gateway) as client:
        response = client.post(
            f"https://{UNTRUSTED}/v1/chat/completions",
            json=chat(mark),
            headers={"authorization": "Bearer sk-test"},
        )
    assert response.status_code == 502
    assert not [r for r in impostor.requests() if mark in r["body"]]  # nothing reached it

    rows = failing_gateway.audit(
        "select host, provider, status, decision, error, latency_ms from exchanges "
        f"where request_body like '%{mark}%'"
    )
    assert len(rows) == 1
    row = rows[0]
    assert (row["host"], row["provider"]) == (UNTRUSTED, "mistral")
    assert (row["status"], row["decision"]) == (502, "error")
    assert "certificate verify failed" in row["error"].lower()
    assert row["latency_ms"] > 0


def test_an_upstream_that_refuses_the_connection_leaves_a_row(failing_gateway):
    with user_client(failing_gateway) as client, pytest.raises(httpx.ProxyError, match="502"):
        client.post(
            f"https://{UNREACHABLE}/v1/chat/completions",
            json=chat("unreachable"),
            headers={"authorization": "Bearer sk-test"},
        )
    rows = failing_gateway.audit(
        "select host, provider, method, status, decision, error, latency_ms from exchanges "
        f"where host = '{UNREACHABLE}'"
    )
    assert len(rows) == 1
    row = rows[0]
    assert (row["provider"], row["method"]) == ("groq", "CONNECT")
    assert (row["status"], row["decision"]) == (502, "error")
    assert "connect" in row["error"].lower()
    assert "connection_strategy" not in row["error"]  # mitmproxy's hint is for operators' logs
    assert row["latency_ms"] >= 0
