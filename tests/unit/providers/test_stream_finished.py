"""Each stream reader says when it has read the provider's last word (its stop event and its final
usage): a client that closes after that had the whole answer (see addons/settle.py)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tollhouse.providers.anthropic import MessagesStreamReader
from tollhouse.providers.base import StreamReader
from tollhouse.providers.bedrock import ConverseStreamReader, InvokeStreamReader
from tollhouse.providers.cohere import ChatStreamReader as CohereReader
from tollhouse.providers.eventstream import encode_event
from tollhouse.providers.gemini import GenerateArrayReader, GenerateSseReader
from tollhouse.providers.openai import ChatStreamReader, ResponsesStreamReader


def sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    body = data if isinstance(data, str) else json.dumps(data)
    return f"{head}data: {body}\n\n".encode()


def frame(kind: str, payload: dict[str, Any]) -> bytes:
    return encode_event(kind, json.dumps(payload).encode())


def invoke_chunk(event: dict[str, Any]) -> bytes:
    encoded = base64.b64encode(json.dumps(event).encode()).decode()
    return encode_event("chunk", json.dumps({"bytes": encoded}).encode())


def anthropic_events(*, named: bool) -> list[bytes]:
    events = [
        {"type": "message_start", "message": {"model": "m", "usage": {"input_tokens": 5}}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "message_delta", "usage": {"output_tokens": 2}},
        {"type": "message_stop"},
    ]
    return [sse(e, e["type"] if named else None) for e in events]


GEMINI = [
    {
        "candidates": [{"content": {"parts": [{"text": "Hi"}]}}],
        "usageMetadata": {"totalTokenCount": 3},
    },
    {
        "candidates": [{"content": {"parts": [{"text": "!"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 2},
    },
]
CHAT_USAGE = {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
RESPONSE_USAGE = {"input_tokens": 3, "output_tokens": 1}

CASES: dict[str, tuple[Any, list[bytes]]] = {
    "anthropic": (MessagesStreamReader, anthropic_events(named=True)),
    "anthropic-unnamed": (MessagesStreamReader, anthropic_events(named=False)),
    "openai-chat": (
        lambda: ChatStreamReader(drop_usage=True),
        [sse({"choices": [{"delta": {"content": "Hi"}}]}), sse(CHAT_USAGE), sse("[DONE]")],
    ),
    "openai-responses": (
        ResponsesStreamReader,
        [
            sse(
                {"type": "response.output_text.delta", "delta": "Hi"}, "response.output_text.delta"
            ),
            sse(
                {"type": "response.completed", "response": {"usage": RESPONSE_USAGE}},
                "response.completed",
            ),
        ],
    ),
    "gemini-sse": (GenerateSseReader, [sse(g) for g in GEMINI]),
    "gemini-array": (
        GenerateArrayReader,
        [b"[" + json.dumps(GEMINI[0]).encode() + b",\r\n", json.dumps(GEMINI[1]).encode() + b"]"],
    ),
    "cohere": (
        CohereReader,
        [
            sse({"type": "content-delta", "delta": {"message": {"content": {"text": "Hi"}}}}),
            sse({"type": "message-end", "delta": {"usage": {"tokens": {"input_tokens": 3}}}}),
        ],
    ),
    "bedrock-converse": (
        ConverseStreamReader,
        [
            frame("contentBlockDelta", {"delta": {"text": "Hi"}}),
            frame("messageStop", {"stopReason": "end_turn"}),
            frame("metadata", {"usage": {"inputTokens": 3, "outputTokens": 1}}),
        ],
    ),
    "bedrock-invoke-anthropic": (
        lambda: InvokeStreamReader(anthropic=True),
        [
            invoke_chunk({"type": "message_start", "message": {"usage": {"input_tokens": 3}}}),
            invoke_chunk({"type": "message_delta", "usage": {"output_tokens": 1}}),
            invoke_chunk(
                {
                    "type": "message_stop",
                    "amazon-bedrock-invocationMetrics": {
                        "inputTokenCount": 3,
                        "outputTokenCount": 1,
                    },
                }
            ),
        ],
    ),
    "bedrock-invoke-native": (
        lambda: InvokeStreamReader(anthropic=False),
        [
            invoke_chunk({"outputText": "Hi"}),
            invoke_chunk(
                {
                    "outputText": "!",
                    "amazon-bedrock-invocationMetrics": {
                        "inputTokenCount": 3,
                        "outputTokenCount": 1,
                    },
                }
            ),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_reader_is_finished_only_once_the_last_event_is_read(name):
    make, events = CASES[name]
    reader: StreamReader = make()
    for event in events[:-1]:
        reader.feed(event)
        assert not reader.finished, "finished before the last event"
    reader.feed(events[-1])
    assert reader.finished
    assert reader.summary.usage is not None


def test_a_stop_without_usage_is_not_finished():
    chat = ChatStreamReader()
    chat.feed(sse({"choices": [{"delta": {"content": "Hi"}}]}) + sse("[DONE]"))
    assert not chat.finished  # the usage was never reported: nothing to settle with

    converse = ConverseStreamReader()
    converse.feed(frame("messageStop", {"stopReason": "end_turn"}))
    assert not converse.finished


def test_a_failed_response_is_not_finished():
    reader = ResponsesStreamReader()
    failed = {"type": "response.failed", "response": {"usage": RESPONSE_USAGE}}
    reader.feed(sse(failed, "response.failed"))
    assert not reader.finished


def test_usage_without_the_stop_event_is_not_finished():
    reader = MessagesStreamReader()
    for event in anthropic_events(named=True)[:-1]:
        reader.feed(event)
    assert reader.summary.usage is not None and not reader.finished
