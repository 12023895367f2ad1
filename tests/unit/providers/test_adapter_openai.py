"""The OpenAI adapter: chat, Responses, completions, embeddings; streams; errors through the SDK."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pytest

from tests.unit.providers.adapter_checks import (
    CHUNK_SIZES,
    assert_parse_error,
    attachments,
    check_render_exact,
    fixture,
    parse,
    request,
    run_stream,
    segments,
)
from tollhouse.exchange import Operation, Role
from tollhouse.providers.base import Refusal
from tollhouse.providers.openai import OpenAIAdapter

A = OpenAIAdapter()
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8/5+hHgAHggJ/"
    "PchI7wAAAABJRU5ErkJggg=="
)

CHAT = {
    "model": "gpt-4o",
    "messages": [
        {"role": "developer", "content": "You are a terse assistant. Secret code: ALPHA-7."},
        {"role": "system", "content": [{"type": "text", "text": "Answer in French."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image? My email is ann@example.com"},
                {"type": "image_url", "image_url": {"url": PNG, "detail": "low"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                {
                    "type": "file",
                    "file": {
                        "filename": "a.pdf",
                        "file_data": "data:application/pdf;base64,JVBERi0=",
                    },
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc123",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc123", "content": "Sunny, 21°C"},
        {"role": "assistant", "content": "Il fait beau.", "refusal": None},
        {"role": "user", "content": "Merci ✓"},
    ],
    "max_completion_tokens": 256,
    "max_tokens": 999,
    "temperature": 0.2,
    "stream": True,
    "tools": [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    ],
}

RESPONSES = {
    "model": "gpt-4.1",
    "instructions": "You are a helpful assistant.",
    "input": [
        {"role": "user", "content": "Tell me a joke about {topic}"},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Describe this"},
                {"type": "input_image", "image_url": PNG},
                {"type": "input_file", "file_id": "file-6F2ksmvXxt4VdoqmHRw6kL"},
            ],
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "A cat.", "annotations": []}],
        },
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "lookup",
            "arguments": '{"q":"cats"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "Cats are mammals."},
        {"type": "item_reference", "id": "msg_123"},
        {
            "type": "reasoning",
            "id": "rs_1",
            "summary": [{"type": "summary_text", "text": "Thinking about cats"}],
        },
    ],
    "max_output_tokens": 500,
    "stream": False,
}


def test_chat_segments_roles_paths() -> None:
    ex = parse(A, "/v1/chat/completions", CHAT)
    assert (ex.api, ex.operation, ex.model, ex.stream, ex.max_output_tokens) == (
        "openai",
        Operation.CHAT,
        "gpt-4o",
        True,
        256,
    )
    assert segments(ex) == [
        (Role.SYSTEM, "$.messages[0].content", "You are a terse assistant. Secret code: ALPHA-7."),
        (Role.SYSTEM, "$.messages[1].content[0].text", "Answer in French."),
        (
            Role.USER,
            "$.messages[2].content[0].text",
            "What is in this image? My email is ann@example.com",
        ),
        (Role.TOOL_CALL, "$.messages[3].tool_calls[0].function.arguments", '{"city": "Paris"}'),
        (Role.TOOL_RESULT, "$.messages[4].content", "Sunny, 21°C"),
        (Role.ASSISTANT, "$.messages[5].content", "Il fait beau."),
        (Role.USER, "$.messages[6].content", "Merci ✓"),
    ]
    assert attachments(ex) == [
        ("image", "$.messages[2].content[1]", "image/png"),
        ("audio", "$.messages[2].content[2]", "audio/wav"),
        ("file", "$.messages[2].content[3]", "application/pdf"),
    ]


def test_chat_max_tokens_fallback_and_defaults() -> None:
    ex = parse(A, "/v1/chat/completions", {"model": "m", "messages": [], "max_tokens": 10})
    assert (ex.max_output_tokens, ex.stream) == (10, False)


def test_chat_render_is_exact() -> None:
    req = request("/v1/chat/completions", CHAT)
    check_render_exact(A, req, model="gpt-4o-mini", model_in_body=lambda b, m: b.update(model=m))
    check_render_exact(A, req, change=[2, 4])


def test_responses_parse_and_render() -> None:
    ex = parse(A, "/v1/responses", RESPONSES)
    assert (ex.operation, ex.model, ex.stream, ex.max_output_tokens) == (
        Operation.RESPONSES,
        "gpt-4.1",
        False,
        500,
    )
    assert segments(ex) == [
        (Role.SYSTEM, "$.instructions", "You are a helpful assistant."),
        (Role.USER, "$.input[0].content", "Tell me a joke about {topic}"),
        (Role.USER, "$.input[1].content[0].text", "Describe this"),
        (Role.ASSISTANT, "$.input[2].content[0].text", "A cat."),
        (Role.TOOL_CALL, "$.input[3].arguments", '{"q":"cats"}'),
        (Role.TOOL_RESULT, "$.input[4].output", "Cats are mammals."),
        (Role.ASSISTANT, "$.input[6].summary[0].text", "Thinking about cats"),
    ]
    assert attachments(ex) == [
        ("image", "$.input[1].content[1]", "image/png"),
        ("file", "$.input[1].content[2]", None),
    ]
    check_render_exact(
        A,
        request("/v1/responses", RESPONSES),
        model="o3",
        model_in_body=lambda b, m: b.update(model=m),
    )


def test_responses_string_input() -> None:
    ex = parse(A, "/v1/responses", {"model": "gpt-4.1", "input": "Hi", "stream": True})
    assert segments(ex) == [(Role.USER, "$.input", "Hi")] and ex.stream


@pytest.mark.parametrize(
    ("path", "key", "operation"),
    [
        ("/v1/completions", "prompt", Operation.COMPLETIONS),
        ("/v1/embeddings", "input", Operation.EMBEDDINGS),
    ],
)
def test_prompt_inputs(path: str, key: str, operation: str) -> None:
    for value, expected in [
        ("one text", [(Role.INPUT, f"$.{key}", "one text")]),
        (["a", "b"], [(Role.INPUT, f"$.{key}[0]", "a"), (Role.INPUT, f"$.{key}[1]", "b")]),
        ([1, 2, 3], []),
        ([[1, 2], [3]], []),
    ]:
        body = {"model": "text-embedding-3-small", key: value, "max_tokens": 16}
        ex = parse(A, path, body)
        assert ex.operation == operation and segments(ex) == expected and not ex.stream
    body = {"model": "gpt-3.5-turbo-instruct", key: ["a", "b"], "encoding_format": "float"}
    check_render_exact(
        A, request(path, body), model="x", model_in_body=lambda b, m: b.update(model=m)
    )


def test_completions_suffix_and_max_tokens() -> None:
    ex = parse(
        A,
        "/v1/completions",
        {"model": "m", "prompt": "def f(", "suffix": "return 1", "max_tokens": 7},
    )
    assert segments(ex)[-1] == (Role.INPUT, "$.suffix", "return 1") and ex.max_output_tokens == 7


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("/v1/chat/completions", {"model": "m"}, "$.messages: expected an array, got null"),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": 5}]},
            "$.messages[0].content:",
        ),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
            "$.messages[0].content[0].text: expected a string",
        ),
        (
            "/v1/chat/completions",
            {"messages": [], "max_tokens": "many"},
            "$.max_tokens: expected an integer",
        ),
        ("/v1/chat/completions", {"messages": [], "stream": "yes"}, "$.stream: expected a boolean"),
        ("/v1/chat/completions", {"model": 4, "messages": []}, "$.model: expected a string"),
        ("/v1/responses", {"input": 3}, "$.input: expected a string or an array"),
        (
            "/v1/embeddings",
            {"input": [{"text": "SECRET-PROMPT"}]},
            "$.input[0]: expected a string or token ids",
        ),
        ("/v1/chat/completions", ["SECRET-PROMPT"], "$: expected an object, got array"),
        ("/v1/chat/completions", b'{"messages": ["SECRET-PROMPT"', "$: body is not valid JSON"),
        ("/v1/chat/completions", b"", "$: empty body"),
        ("/v1/chat/completions", b"\xff\xfe\xfa", "$: body is not valid"),
    ],
)
def test_malformed_bodies(path: str, body: Any, where: str) -> None:
    if isinstance(body, dict) and "messages" in body and body["messages"]:
        body["messages"][0].setdefault("note", "SECRET-PROMPT")
    assert_parse_error(A, path, body, where, "SECRET-PROMPT")


def test_summarize_chat_json() -> None:
    body = {
        "id": "chatcmpl-123",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello there.",
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 19,
            "completion_tokens": 10,
            "total_tokens": 29,
            "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
        "service_tier": "default",
    }
    ex = parse(A, "/v1/chat/completions", CHAT)
    s = A.summarize(ex, json.dumps(body).encode())
    assert (s.model, s.text) == ("gpt-4o-2024-08-06", "Hello there.")
    assert s.usage is not None and (
        s.usage.input_tokens,
        s.usage.output_tokens,
        s.usage.cache_read_tokens,
    ) == (19, 10, 3)
    assert A.summarize(ex, b"not json").usage is None


def test_summarize_responses_and_embeddings() -> None:
    body = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "model": "gpt-4.1-2025-04-14",
        "output": [
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": "In a land far away", "annotations": []}
                ],
            },
        ],
        "usage": {
            "input_tokens": 36,
            "input_tokens_details": {"cached_tokens": 4},
            "output_tokens": 87,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 123,
        },
    }
    s = A.summarize(parse(A, "/v1/responses", RESPONSES), json.dumps(body).encode())
    assert s.text == "In a land far away" and s.usage is not None
    assert (s.usage.input_tokens, s.usage.output_tokens, s.usage.cache_read_tokens) == (36, 87, 4)
    emb = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1]}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    s = A.summarize(
        parse(A, "/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"}),
        json.dumps(emb).encode(),
    )
    assert s.usage is not None and (s.usage.input_tokens, s.usage.output_tokens) == (8, 0)


def _streaming_chat(stream_options: Any = None) -> Any:
    body: dict[str, Any] = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Salut"}],
        "stream": True,
    }
    if stream_options is not None:
        body["stream_options"] = stream_options
    return parse(A, "/v1/chat/completions", body)


@pytest.mark.parametrize("size", CHUNK_SIZES)
def test_gateway_asked_usage_is_dropped_but_read(size: int) -> None:
    ex = _streaming_chat()
    assert A.ask_for_stream_usage(ex) is True
    rendered = A.render(ex)
    assert json.loads(rendered.body)["stream_options"] == {"include_usage": True}
    stream = fixture("openai_chat_stream_usage.sse")
    reader = A.stream_reader(ex, "text/event-stream")
    forwarded = run_stream(reader, stream, size)
    usage_event = next(e for e in stream.split(b"\n\n") if b'"choices":[]' in e) + b"\n\n"
    assert forwarded == stream.replace(usage_event, b"")
    assert b'"choices":[]' not in forwarded and forwarded.endswith(b"data: [DONE]\n\n")
    s = reader.summary
    assert s.usage is not None and (
        s.usage.input_tokens,
        s.usage.output_tokens,
        s.usage.cache_read_tokens,
    ) == (19, 4, 6)
    assert (s.model, s.text) == ("gpt-4o-2024-08-06", "Bonjour à toi ✓")


@pytest.mark.parametrize("size", CHUNK_SIZES)
def test_client_asked_usage_is_forwarded(size: int) -> None:
    ex = _streaming_chat({"include_usage": True})
    assert A.ask_for_stream_usage(ex) is False and not ex.changed
    assert A.render(ex).body == ex.raw_body
    stream = fixture("openai_chat_stream_usage.sse")
    reader = A.stream_reader(ex, "text/event-stream")
    out = bytearray()
    for i in range(0, len(stream), size):
        chunk = stream[i : i + size]
        forwarded = reader.feed(chunk)
        assert forwarded == chunk  # nothing to drop: bytes pass at once
        out += forwarded
    assert reader.close() == b""
    assert bytes(out) == stream and reader.summary.usage is not None


def test_ask_for_usage_keeps_other_stream_options() -> None:
    ex = _streaming_chat({"include_obfuscation": False})
    assert A.ask_for_stream_usage(ex) is True
    assert ex.body["stream_options"] == {"include_obfuscation": False, "include_usage": True}
    assert A.ask_for_stream_usage(ex) is False  # idempotent
    assert (
        A.ask_for_stream_usage(parse(A, "/v1/chat/completions", {"model": "m", "messages": []}))
        is False
    )
    assert (
        A.ask_for_stream_usage(
            parse(A, "/v1/responses", {"model": "m", "input": "x", "stream": True})
        )
        is False
    )


def test_stream_without_usage_forwards_everything() -> None:
    ex = _streaming_chat()
    reader = A.stream_reader(ex, "text/event-stream")
    stream = fixture("openai_chat_stream.sse")
    assert run_stream(reader, stream, 5) == stream
    assert reader.summary.usage is None and reader.summary.text == "Bonjour à toi ✓"


@pytest.mark.parametrize("size", CHUNK_SIZES)
def test_responses_stream_usage(size: int) -> None:
    ex = parse(A, "/v1/responses", {"model": "gpt-4.1", "input": "Hi", "stream": True})
    reader = A.stream_reader(ex, "text/event-stream")
    stream = fixture("openai_responses_stream.sse")
    assert run_stream(reader, stream, size) == stream
    s = reader.summary
    assert s.usage is not None and (
        s.usage.input_tokens,
        s.usage.output_tokens,
        s.usage.cache_read_tokens,
    ) == (37, 11, 5)
    assert (s.model, s.text) == ("gpt-4.1-2025-04-14", "Hi there ✓")


def test_stream_text_is_capped() -> None:
    ex = _streaming_chat()
    reader = A.stream_reader(ex, "text/event-stream")
    piece = "x" * 100_000
    event = b'data: {"choices":[{"index":0,"delta":{"content":"' + piece.encode() + b'"}}]}\n\n'
    for _ in range(20):
        reader.feed(event)
    reader.close()
    assert len(reader.summary.text) == 1 << 20


@pytest.mark.parametrize(
    ("status", "refusal", "exc", "kind"),
    [
        (400, Refusal.INVALID_REQUEST, openai.BadRequestError, "invalid_request_error"),
        (401, Refusal.AUTHENTICATION, openai.AuthenticationError, "authentication_error"),
        (403, Refusal.PERMISSION, openai.PermissionDeniedError, "permission_error"),
        (404, Refusal.NOT_FOUND, openai.NotFoundError, "invalid_request_error"),
        (429, Refusal.RATE_LIMIT, openai.RateLimitError, "insufficient_quota"),
        (502, Refusal.GATEWAY, openai.InternalServerError, "server_error"),
    ],
)
def test_error_replies_through_the_sdk(
    status: int, refusal: str, exc: type[Exception], kind: str
) -> None:
    reply = A.error_reply(status, refusal, "Blocked by policy: PII (email) in prompt")
    assert (
        reply.headers["x-should-retry"] == "false"
        and reply.headers["content-type"] == "application/json"
    )
    body = json.loads(reply.body)
    assert (
        set(body["error"]) == {"message", "type", "param", "code"} and body["error"]["type"] == kind
    )
    calls = []

    def handler(req: httpx2.Request) -> httpx2.Response:
        calls.append(req)
        return httpx2.Response(reply.status, headers=reply.headers, content=reply.body)

    client = openai.OpenAI(
        api_key="sk-test",
        base_url="https://api.openai.com/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    with pytest.raises(exc) as info:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert len(calls) == 1  # x-should-retry: false — not retried, even for 429 and 5xx
    err = info.value
    assert isinstance(err, openai.APIStatusError) and err.status_code == status
    assert "Blocked by policy: PII (email) in prompt" in err.message and err.type == kind


def test_dropping_reader_forwards_each_event_once_complete() -> None:
    ex = _streaming_chat()
    A.ask_for_stream_usage(ex)
    reader = A.stream_reader(ex, "text/event-stream")
    events = [e + b"\n\n" for e in fixture("openai_chat_stream_usage.sse").split(b"\n\n") if e]
    first = events[0]
    assert reader.feed(first[:10]) == b""  # only an incomplete event is held
    assert reader.feed(first[10:]) == first  # and forwarded the moment it completes
    assert reader.feed(events[1] + events[2][:5]) == events[1]


def test_runaway_event_is_forwarded_unparsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tollhouse.providers.common.MAX_PENDING", 64)
    ex = _streaming_chat()
    A.ask_for_stream_usage(ex)
    reader = A.stream_reader(ex, "text/event-stream")
    huge = b"data: " + b"x" * 200
    assert reader.feed(huge[:50]) == b""
    assert reader.feed(huge[50:]) == huge  # past the limit: hand everything over, stop parsing
    assert reader.feed(b"\n\n") == b"\n\n"
    assert reader.close() == b""


def test_sdk_stream_after_the_usage_drop() -> None:
    ex = _streaming_chat()
    A.ask_for_stream_usage(ex)
    reader = A.stream_reader(ex, "text/event-stream")
    forwarded = run_stream(reader, fixture("openai_chat_stream_usage.sse"), 9)

    def handler(req: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=forwarded
        )

    client = openai.OpenAI(
        api_key="sk-test",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Salut"}], stream=True
        )
    )
    assert all(chunk.choices for chunk in chunks)  # the client never sees the usage-only chunk
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Bonjour à toi ✓"
    assert reader.summary.usage is not None and reader.summary.usage.total_tokens == 23
