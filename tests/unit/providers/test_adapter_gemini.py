"""Gemini and Vertex AI: model in the path, camel- and snake-case bodies, SSE and array streams."""

from __future__ import annotations

import json
from typing import Any

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
from tollhouse.providers.gemini import GeminiAdapter
from tollhouse.providers.vertex import VertexAdapter

G = GeminiAdapter()
V = VertexAdapter()
GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
BODY: dict[str, Any] = {
    "systemInstruction": {"parts": [{"text": "You are a cat. Your name is Neko."}]},
    "contents": [
        {
            "role": "user",
            "parts": [
                {"text": "Hello there"},
                {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}},
            ],
        },
        {
            "role": "model",
            "parts": [
                {"text": "Meow", "thoughtSignature": "abc"},
                {
                    "functionCall": {
                        "name": "find_theaters",
                        "args": {"location": "Mountain View, CA", "movie": "Barbie", "n": 3},
                    }
                },
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "find_theaters",
                        "response": {
                            "name": "find_theaters",
                            "content": {
                                "movie": "Barbie",
                                "theaters": [{"name": "AMC Mountain View 16"}],
                            },
                        },
                    }
                }
            ],
        },
        {
            "parts": [
                {
                    "fileData": {
                        "mimeType": "application/pdf",
                        "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc",
                    }
                },
                {"text": "Summarize ✓"},
            ]
        },
    ],
    "generationConfig": {
        "temperature": 0.7,
        "maxOutputTokens": 800,
        "thinkingConfig": {"thinkingBudget": 0},
    },
    "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
}
SNAKE: dict[str, Any] = {
    "system_instruction": {"parts": [{"text": "Be terse."}]},
    "contents": [
        {
            "parts": [
                {"text": "What is this?"},
                {"inline_data": {"mime_type": "audio/mp3", "data": "SUQz"}},
            ]
        }
    ],
    "generation_config": {"max_output_tokens": 64},
}


def test_parse_generate() -> None:
    ex = parse(G, GEN, BODY)
    assert (ex.api, ex.operation, ex.model, ex.stream, ex.max_output_tokens) == (
        "gemini",
        Operation.GENERATE,
        "gemini-2.5-flash",
        False,
        800,
    )
    assert segments(ex) == [
        (Role.SYSTEM, "$.systemInstruction.parts[0].text", "You are a cat. Your name is Neko."),
        (Role.USER, "$.contents[0].parts[0].text", "Hello there"),
        (Role.ASSISTANT, "$.contents[1].parts[0].text", "Meow"),
        (Role.TOOL_CALL, "$.contents[1].parts[1].functionCall.args.location", "Mountain View, CA"),
        (Role.TOOL_CALL, "$.contents[1].parts[1].functionCall.args.movie", "Barbie"),
        (
            Role.TOOL_RESULT,
            "$.contents[2].parts[0].functionResponse.response.name",
            "find_theaters",
        ),
        (
            Role.TOOL_RESULT,
            "$.contents[2].parts[0].functionResponse.response.content.movie",
            "Barbie",
        ),
        (
            Role.TOOL_RESULT,
            "$.contents[2].parts[0].functionResponse.response.content.theaters[0].name",
            "AMC Mountain View 16",
        ),
        (Role.USER, "$.contents[3].parts[1].text", "Summarize ✓"),
    ]
    assert attachments(ex) == [
        ("image", "$.contents[0].parts[1]", "image/jpeg"),
        ("file", "$.contents[3].parts[0]", "application/pdf"),
    ]


def test_snake_case_body() -> None:
    ex = parse(G, "/v1/models/gemini-2.0-flash:streamGenerateContent?alt=sse", SNAKE)
    assert ex.stream and ex.max_output_tokens == 64 and ex.model == "gemini-2.0-flash"
    assert segments(ex) == [
        (Role.SYSTEM, "$.system_instruction.parts[0].text", "Be terse."),
        (Role.USER, "$.contents[0].parts[0].text", "What is this?"),
    ]
    assert attachments(ex) == [("audio", "$.contents[0].parts[1]", "audio/mp3")]


def test_render_rewrites_the_model_in_the_path() -> None:
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=AIza"
    again = check_render_exact(G, request(path, BODY), model="gemini-2.5-flash-lite")
    assert (
        again.path == "/v1beta/models/gemini-2.5-flash-lite:streamGenerateContent?alt=sse&key=AIza"
    )
    ex = parse(G, path, BODY)
    ex.set_model("models/gemini-2.5-pro")
    rendered = G.render(ex)
    assert (
        rendered.path.startswith("/v1beta/models/gemini-2.5-pro:")
        and rendered.body == request(path, BODY).body
    )
    check_render_exact(G, request(GEN, SNAKE))


def test_count_tokens_and_embeddings() -> None:
    ex = parse(
        G,
        "/v1beta/models/gemini-2.5-flash:countTokens",
        {
            "generateContentRequest": {
                "model": "models/gemini-2.5-flash",
                "contents": [{"parts": [{"text": "count"}]}],
            }
        },
    )
    assert ex.operation == Operation.COUNT_TOKENS and segments(ex) == [
        (Role.USER, "$.generateContentRequest.contents[0].parts[0].text", "count")
    ]
    assert G.summarize(ex, b'{"totalTokens": 3}').usage is None
    ex = parse(
        G,
        "/v1beta/models/gemini-embedding-001:embedContent",
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "embed me"}]}},
    )
    assert ex.operation == Operation.EMBEDDINGS and segments(ex) == [
        (Role.INPUT, "$.content.parts[0].text", "embed me")
    ]
    ex = parse(
        G,
        "/v1beta/models/text-embedding-004:batchEmbedContents",
        {
            "requests": [
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}}
            ]
        },
    )
    assert segments(ex) == [(Role.INPUT, "$.requests[0].content.parts[0].text", "a")]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({}, "$.contents: expected an array, got null"),
        (
            {"contents": [{"parts": [{"text": 5}]}]},
            "$.contents[0].parts[0].text: expected a string",
        ),
        (
            {"contents": [{"parts": {"text": "SECRET-PROMPT"}}]},
            "$.contents[0].parts: expected an array, got object",
        ),
        (
            {"contents": [], "generationConfig": {"maxOutputTokens": "8"}},
            "$.generationConfig.maxOutputTokens: expected an integer",
        ),
        (
            {"contents": [], "systemInstruction": "SECRET-PROMPT"},
            "$.systemInstruction: expected an object, got string",
        ),
    ],
)
def test_malformed(body: dict[str, Any], where: str) -> None:
    assert_parse_error(G, GEN, body, where, "SECRET-PROMPT")


def test_summarize_json() -> None:
    body = {
        "candidates": [
            {
                "content": {
                    "parts": [{"text": "secret thoughts", "thought": True}, {"text": "Meow."}],
                    "role": "model",
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 12,
            "candidatesTokenCount": 5,
            "totalTokenCount": 40,
            "thoughtsTokenCount": 23,
            "cachedContentTokenCount": 8,
            "toolUsePromptTokenCount": 2,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "abc",
    }
    s = G.summarize(parse(G, GEN, BODY), json.dumps(body).encode())
    assert (s.model, s.text) == ("gemini-2.5-flash", "Meow.")
    assert s.usage is not None and (
        s.usage.input_tokens,
        s.usage.output_tokens,
        s.usage.cache_read_tokens,
    ) == (14, 28, 8)


@pytest.mark.parametrize("size", CHUNK_SIZES)
@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("gemini_stream.sse", "text/event-stream"),
        ("gemini_stream.json", "application/json; charset=UTF-8"),
    ],
)
def test_streams_take_the_last_usage(size: int, name: str, content_type: str) -> None:
    reader = G.stream_reader(
        parse(G, "/v1beta/models/gemini-2.5-flash:streamGenerateContent", BODY), content_type
    )
    stream = fixture(name)
    assert run_stream(reader, stream, size) == stream
    s = reader.summary
    assert (s.model, s.text) == ("gemini-2.5-flash", 'Un chat dort. {"json": [1]} ✓')
    assert s.usage is not None and (
        s.usage.input_tokens,
        s.usage.output_tokens,
        s.usage.cache_read_tokens,
    ) == (9, 43, 4)


@pytest.mark.parametrize(
    ("refusal", "status", "code"),
    [
        (Refusal.INVALID_REQUEST, 400, "INVALID_ARGUMENT"),
        (Refusal.AUTHENTICATION, 401, "UNAUTHENTICATED"),
        (Refusal.PERMISSION, 403, "PERMISSION_DENIED"),
        (Refusal.NOT_FOUND, 404, "NOT_FOUND"),
        (Refusal.RATE_LIMIT, 429, "RESOURCE_EXHAUSTED"),
        (Refusal.GATEWAY, 502, "INTERNAL"),
    ],
)
def test_error_shape(refusal: str, status: int, code: str) -> None:
    for adapter in (G, V):
        reply = adapter.error_reply(status, refusal, "Blocked by policy")
        assert json.loads(reply.body) == {
            "error": {"code": status, "message": "Blocked by policy", "status": code}
        }
        assert reply.headers["x-should-retry"] == "false"


VERTEX = (
    "/v1/projects/my-proj/locations/us-central1/publishers/google/models/"
    "gemini-2.5-pro:streamGenerateContent?alt=sse"
)
CLAUDE = (
    "/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models/"
    "claude-sonnet-4@20250514:rawPredict"
)
CLAUDE_BODY = {
    "anthropic_version": "vertex-2023-10-16",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Hey Claude"}]}],
    "system": "Be kind.",
    "max_tokens": 256,
}


def test_vertex_gemini() -> None:
    ex = parse(V, VERTEX, BODY)
    assert (ex.api, ex.operation, ex.model, ex.stream, ex.max_output_tokens) == (
        "vertex",
        Operation.GENERATE,
        "gemini-2.5-pro",
        True,
        800,
    )
    assert len(ex.segments) == 9
    again = check_render_exact(V, request(VERTEX, BODY), model="gemini-2.5-flash")
    assert again.path == VERTEX.replace("gemini-2.5-pro", "gemini-2.5-flash")
    express = "/v1/publishers/google/models/gemini-2.5-flash:generateContent?key=AQ"
    assert parse(V, express, SNAKE).model == "gemini-2.5-flash"
    reader = V.stream_reader(ex, "text/event-stream")
    run_stream(reader, fixture("gemini_stream.sse"), 3)
    assert reader.summary.usage is not None and reader.summary.usage.output_tokens == 43


def test_vertex_anthropic() -> None:
    ex = parse(V, CLAUDE, CLAUDE_BODY)
    assert (ex.operation, ex.model, ex.stream, ex.max_output_tokens) == (
        Operation.MESSAGES,
        "claude-sonnet-4@20250514",
        False,
        256,
    )
    assert segments(ex) == [
        (Role.SYSTEM, "$.system", "Be kind."),
        (Role.USER, "$.messages[0].content[0].text", "Hey Claude"),
    ]
    again = check_render_exact(V, request(CLAUDE, CLAUDE_BODY), model="claude-haiku-4-5@20251001")
    assert again.path == CLAUDE.replace("claude-sonnet-4@20250514", "claude-haiku-4-5@20251001")
    assert "model" not in json.loads(V.render(ex).body)
    streaming = parse(
        V, CLAUDE.replace(":rawPredict", ":streamRawPredict"), {**CLAUDE_BODY, "stream": True}
    )
    assert streaming.stream
    reader = V.stream_reader(streaming, "text/event-stream")
    stream = fixture("anthropic_stream.sse")
    assert run_stream(reader, stream, 11) == stream
    assert reader.summary.usage is not None and reader.summary.usage.output_tokens == 89
    body = {
        "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Hi"}],
        "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    assert V.summarize(ex, json.dumps(body).encode()).text == "Hi"


def test_vertex_anthropic_count_tokens() -> None:
    path = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict"
    body = {
        "model": "claude-sonnet-4@20250514",
        "messages": [{"role": "user", "content": "How many?"}],
    }
    ex = parse(V, path, body)
    assert (ex.operation, ex.model) == (Operation.COUNT_TOKENS, "claude-sonnet-4@20250514")
    check_render_exact(
        V, request(path, body), model="claude-x", model_in_body=lambda b, m: b.update(model=m)
    )
