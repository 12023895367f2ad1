"""Streams through the gateway when things go wrong, and when they go right byte for byte."""

from __future__ import annotations

import json
import uuid

import anthropic
import httpx
import openai
import pytest

from tests.e2e.conftest import user_client

pytestmark = pytest.mark.e2e

OPENAI = "https://api.openai.com/v1"
ANTHROPIC = "https://api.anthropic.com/v1/messages"
GEMINI = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"


def marker() -> str:
    """A word that only this test's prompt contains, to find its audit row."""
    return f"mark{uuid.uuid4().hex[:12]}"


def rows_for(gateway, mark: str, columns: str) -> list[dict]:
    rows = gateway.audit(f"select {columns} from exchanges where request_body like '%{mark}%'")
    assert len(rows) == 1, rows  # one exchange, one row
    return rows


def chat(mark: str, **extra) -> dict:
    return {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": f"tell me something {mark}"}],
        **extra,
    }


def read_until_broken(client: httpx.Client, url: str, body: dict, headers: dict) -> bytes:
    """What a client receives of a stream the provider breaks midway; the break must show."""
    received = b""
    with client.stream("POST", url, json=body, headers=headers) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            for chunk in response.iter_raw():
                received += chunk
    return received


def test_a_stream_the_provider_breaks_reaches_the_client_broken_and_is_audited_once(gateway):
    mark = marker()
    headers = {"authorization": "Bearer sk-test", "x-fake-behavior": "break"}
    with user_client(gateway) as client:
        received = read_until_broken(
            client, f"{OPENAI}/chat/completions", chat(mark, stream=True), headers
        )
    assert b"data: " in received and b"[DONE]" not in received

    row = rows_for(gateway, mark, "status, decision, error, stream, latency_ms, response_body")[0]
    assert row["stream"] is True
    assert row["status"] == 200  # what the client received before the break
    assert row["decision"] == "error" and row["error"]
    assert row["latency_ms"] > 0
    assert row["response_body"] == received.decode()


def test_a_broken_anthropic_stream_is_charged_the_usage_reported_before_the_break(gateway):
    mark = marker()
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": f"stream and break {mark}"}],
    }
    headers = {
        "x-api-key": "sk-ant-test",
        "anthropic-version": "2023-06-01",
        "x-fake-behavior": "break",
    }
    with user_client(gateway) as client:
        received = read_until_broken(client, ANTHROPIC, body, headers)
    assert b"message_start" in received and b"message_stop" not in received

    row = rows_for(gateway, mark, "status, decision, error, tokens_in, tokens_out, cost_usd")[0]
    assert (row["status"], row["decision"]) == (200, "error")
    assert row["tokens_in"] == 4  # message_start's usage: the four words of the prompt
    assert row["tokens_out"] == 1
    assert row["cost_usd"] > 0


def test_a_client_that_leaves_mid_stream_leaves_one_row(gateway):
    mark = marker()
    with (
        user_client(gateway) as client,
        client.stream(
            "POST",
            f"{OPENAI}/chat/completions",
            json=chat(mark, stream=True),
            headers={"authorization": "Bearer sk-test", "x-fake-behavior": "slow=150,chunks=40"},
        ) as response,
    ):
        assert response.status_code == 200
        next(response.iter_raw())  # the first event, then the user closes the app

    row = rows_for(gateway, mark, "status, decision, error, latency_ms")[0]
    assert row["status"] == 200
    assert row["decision"] == "error"
    assert "client" in row["error"].lower()
    assert row["latency_ms"] > 0


def test_an_error_status_on_a_streamed_request_passes_as_json(as_user):
    mark = marker()
    with pytest.raises(openai.RateLimitError) as raised:
        openai.OpenAI(api_key="sk-test", max_retries=0).chat.completions.create(
            **chat(mark, stream=True), extra_headers={"x-fake-behavior": "error=429"}
        )
    assert raised.value.code == "rate_limit_exceeded"  # the provider's JSON error, parsed
    row = rows_for(as_user, mark, "status, decision, error, stream, response_body")[0]
    assert (row["status"], row["decision"], row["error"]) == (429, "allow", None)
    assert json.loads(row["response_body"])["error"]["code"] == "rate_limit_exceeded"

    mark = marker()
    with pytest.raises(anthropic.InternalServerError):
        anthropic.Anthropic(api_key="sk-ant-test", max_retries=0).messages.create(
            model="claude-sonnet-4-6",
            max_tokens=50,
            stream=True,
            messages=[{"role": "user", "content": f"fail {mark}"}],
            extra_headers={"x-fake-behavior": "error=500"},
        )
    row = rows_for(as_user, mark, "status, decision, response_body")[0]
    assert (row["status"], row["decision"]) == (500, "allow")
    assert json.loads(row["response_body"])["error"]["type"] == "api_error"


def test_gemini_json_array_stream_with_the_key_in_the_query(gateway):
    mark = marker()
    key = f"AIzaSecret{uuid.uuid4().hex}"
    body = {"contents": [{"role": "user", "parts": [{"text": f"Hello {mark}"}]}]}
    with user_client(gateway) as client:
        response = client.post(f"{GEMINI}:streamGenerateContent?key={key}", json=body)
    assert response.status_code == 200
    chunks = response.json()  # one JSON array, streamed
    assert len(chunks) > 1 and "fake" in "".join(
        c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks
    )

    row = rows_for(gateway, mark, "*")[0]
    assert (row["operation"], row["stream"], row["status"]) == ("generate", True, 200)
    assert row["tokens_in"] == chunks[-1]["usageMetadata"]["promptTokenCount"]
    assert row["tokens_out"] == chunks[-1]["usageMetadata"]["candidatesTokenCount"]
    assert row["cost_usd"] > 0
    assert key not in json.dumps(row, default=str)  # the query string is never stored
    assert key not in gateway.log.read_text()  # nor logged


@pytest.mark.parametrize("asked", [False, True])
def test_usage_chunk_cut_across_reads_is_still_dropped_or_kept(as_user, asked):
    """The provider's usage chunk arrives in two pieces: the client still gets exactly what it
    asked for (no usage chunk, or its one usage chunk), and the audit gets the usage."""
    mark = marker()
    extra = {"stream_options": {"include_usage": True}} if asked else {}
    chunks = list(
        openai.OpenAI(api_key="sk-test", max_retries=0).chat.completions.create(
            **chat(mark, stream=True, **extra), extra_headers={"x-fake-behavior": "split"}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake gpt-4o-mini. How can I help?"
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == (1 if asked else 0)
    row = rows_for(as_user, mark, "tokens_in, tokens_out")[0]
    assert row == {"tokens_in": 4, "tokens_out": 9}


@pytest.mark.parametrize(
    ("url", "body", "headers"),
    [
        (
            f"{OPENAI}/chat/completions",
            {"stream_options": {"include_usage": True}},
            {"authorization": "Bearer sk-test"},
        ),
        (f"{OPENAI}/responses", {}, {"authorization": "Bearer sk-test"}),
        (
            ANTHROPIC,
            {"model": "claude-sonnet-4-6", "max_tokens": 50},
            {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"},
        ),
    ],
    ids=["chat-with-usage", "responses", "anthropic"],
)
def test_streamed_bytes_reach_the_client_unmodified(gateway, url, body, headers):
    """Nothing to drop: the client gets the provider's bytes, which the audit also keeps."""
    mark = marker()
    if url.endswith("/responses"):
        payload = {"model": "gpt-4.1-mini", "input": f"stream {mark}", "stream": True}
    else:
        payload = {**chat(mark, stream=True), **body}
    with (
        user_client(gateway) as client,
        client.stream(
            "POST", url, json=payload, headers={**headers, "x-fake-behavior": "split"}
        ) as response,
    ):
        assert response.status_code == 200
        received = b"".join(response.iter_raw())
    row = rows_for(gateway, mark, "response_body, tokens_out")[0]
    assert row["response_body"] == received.decode()
    assert row["tokens_out"] == 9
