"""A client that closes its connection once it has read a stream's last event (litellm's does, on
Anthropic streams) got the whole answer: the exchange is `allow`, charged in full. A client that
closes in the middle of a stream did not: that stays an `error`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from tests.e2e.conftest import user_client

pytestmark = pytest.mark.e2e


def marker() -> str:
    return f"mark{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class Stream:
    """One provider's streamed call, and the bytes that show its last event has arrived."""

    name: str
    url: str
    headers: dict[str, str]
    last_event: bytes

    def body(self, mark: str) -> dict:
        text = f"tell me a story {mark}"
        if self.name == "gemini":
            return {"contents": [{"role": "user", "parts": [{"text": text}]}]}
        if self.name == "bedrock":
            return {"messages": [{"role": "user", "content": [{"text": text}]}]}
        if self.name == "responses":
            return {"model": "gpt-4o-mini", "input": text, "stream": True}
        model = {"anthropic": "claude-sonnet-4-6", "cohere": "command-r-plus"}.get(
            self.name, "gpt-4o-mini"
        )
        return {
            "model": model,
            "max_tokens": 100,
            "stream": True,
            "messages": [{"role": "user", "content": text}],
        }


STREAMS = [
    Stream(
        "anthropic",
        "https://api.anthropic.com/v1/messages",
        {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"},
        b"message_stop",
    ),
    Stream(
        "openai",
        "https://api.openai.com/v1/chat/completions",
        {"authorization": "Bearer sk-test"},
        b"[DONE]",
    ),
    Stream(
        "responses",
        "https://api.openai.com/v1/responses",
        {"authorization": "Bearer sk-test"},
        b"response.completed",
    ),
    Stream(
        "gemini",
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
        ":streamGenerateContent?alt=sse",
        {"x-goog-api-key": "AIza-test"},
        b'"finishReason"',
    ),
    Stream(
        "cohere",
        "https://api.cohere.com/v2/chat",
        {"authorization": "Bearer co-test-key"},
        b"message-end",
    ),
    Stream(
        "bedrock",
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
        "anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream",
        {"authorization": "Bearer ABSKtest-bedrock-api-key"},
        b"metadata",
    ),
]


def read_then_close(gateway, stream: Stream, mark: str, behavior: str, until: bytes) -> bytes:
    """Read the stream until ``until`` has arrived, then close the connection at once."""
    received = b""
    headers = {**stream.headers, "x-fake-behavior": behavior}
    # Leaving the block with the body unread closes the connection, as litellm's client does.
    with (
        user_client(gateway) as client,
        client.stream("POST", stream.url, json=stream.body(mark), headers=headers) as answer,
    ):
        assert answer.status_code == 200
        for chunk in answer.iter_raw():
            received += chunk
            if until in received:
                break
    assert until in received
    return received


def row_for(gateway, mark: str) -> dict:
    (row,) = gateway.audit(
        "select status, decision, error, tokens_in, tokens_out, cost_usd, reason "
        f"from exchanges where request_body like '%{mark}%'"
    )
    return row


@pytest.mark.parametrize("stream", STREAMS, ids=lambda s: s.name)
def test_a_client_closing_after_the_last_event_got_the_whole_answer(gateway, stream):
    mark = marker()
    # The provider holds the body open after its last event: the client leaves first.
    read_then_close(gateway, stream, mark, "linger=1500", stream.last_event)
    row = row_for(gateway, mark)
    assert row["decision"] == "allow", row
    assert row["status"] == 200
    assert row["error"] is None
    assert row["tokens_in"] and row["tokens_out"]


def test_an_anthropic_stream_closed_after_message_stop_is_charged_its_usage(gateway):
    mark = marker()
    received = read_then_close(gateway, STREAMS[0], mark, "linger=1500", b"message_stop")
    row = row_for(gateway, mark)
    assert row["decision"] == "allow" and row["cost_usd"] and row["cost_usd"] > 0
    assert b'"output_tokens"' in received  # the usage the client saw is the usage charged


@pytest.mark.parametrize("stream", STREAMS, ids=lambda s: s.name)
def test_a_client_closing_in_the_middle_of_a_stream_is_an_error(gateway, stream):
    mark = marker()
    # Slow events: the client reads the first content and leaves long before the end.
    first = {"anthropic": b"content_block_delta", "bedrock": b"contentBlockDelta"}.get(
        stream.name, b"data:"
    )
    received = read_then_close(gateway, stream, mark, "slow=400,chunks=8", first)
    assert stream.last_event not in received
    row = row_for(gateway, mark)
    assert row["decision"] == "error", row
    assert row["error"]
