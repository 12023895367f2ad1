"""Bedrock runtime: Converse, InvokeModel (Anthropic and native bodies), SigV4, event streams."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.unit.providers.adapter_checks import (
    CHUNK_SIZES,
    assert_parse_error,
    attachments,
    check_render_exact,
    parse,
    request,
    run_stream,
    segments,
)
from tollhouse.exchange import Operation, Role
from tollhouse.providers.base import Refusal, SignedBodyError
from tollhouse.providers.bedrock import BedrockAdapter
from tollhouse.providers.eventstream import encode_event, encode_exception

B = BedrockAdapter()
MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
CONVERSE_PATH = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
SIGV4 = {
    "content-type": "application/json",
    "x-amz-date": "20250101T000000Z",
    "x-amz-content-sha256": "a" * 64,
    "authorization": "AWS4-HMAC-SHA256 "
    "Credential=AKIDEXAMPLE/20250101/us-east-1/bedrock/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date, Signature=" + "0" * 64,
}
CONVERSE: dict[str, Any] = {
    "system": [
        {"text": "You are an app that creates playlists."},
        {"cachePoint": {"type": "default"}},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"text": "Create a list of 3 pop songs."},
                {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
                {"document": {"format": "pdf", "name": "brief", "source": {"bytes": "JVBERi0="}}},
                {
                    "document": {
                        "format": "txt",
                        "name": "notes",
                        "source": {"text": "Notes: call Bob at 555-0100"},
                    }
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"reasoningContent": {"reasoningText": {"text": "Pick hits.", "signature": "sig"}}},
                {
                    "toolUse": {
                        "toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                        "name": "top_song",
                        "input": {"sign": "WZPZ", "tags": ["pop"]},
                    }
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "toolResult": {
                        "toolUseId": "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q",
                        "content": [
                            {"json": {"song": "Elemental Hotel", "artist": "8 Storey Hike"}},
                            {"text": "ok"},
                        ],
                        "status": "success",
                    }
                },
            ],
        },
    ],
    "inferenceConfig": {"maxTokens": 512, "temperature": 0.5},
    "toolConfig": {
        "tools": [{"toolSpec": {"name": "top_song", "inputSchema": {"json": {"type": "object"}}}}]
    },
}
ANTHROPIC_INVOKE = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 300,
    "system": "Be brief.",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello Claude"}]}],
}


def test_parse_converse() -> None:
    ex = parse(B, CONVERSE_PATH, CONVERSE)
    assert (ex.api, ex.operation, ex.model, ex.stream, ex.max_output_tokens, ex.signed) == (
        "bedrock",
        Operation.CONVERSE,
        MODEL,
        False,
        512,
        False,
    )
    assert segments(ex) == [
        (Role.SYSTEM, "$.system[0].text", "You are an app that creates playlists."),
        (Role.USER, "$.messages[0].content[0].text", "Create a list of 3 pop songs."),
        (
            Role.TOOL_RESULT,
            "$.messages[0].content[3].document.source.text",
            "Notes: call Bob at 555-0100",
        ),
        (
            Role.ASSISTANT,
            "$.messages[1].content[0].reasoningContent.reasoningText.text",
            "Pick hits.",
        ),
        (Role.TOOL_CALL, "$.messages[1].content[1].toolUse.input.sign", "WZPZ"),
        (Role.TOOL_CALL, "$.messages[1].content[1].toolUse.input.tags[0]", "pop"),
        (
            Role.TOOL_RESULT,
            "$.messages[2].content[0].toolResult.content[0].json.song",
            "Elemental Hotel",
        ),
        (
            Role.TOOL_RESULT,
            "$.messages[2].content[0].toolResult.content[0].json.artist",
            "8 Storey Hike",
        ),
        (Role.TOOL_RESULT, "$.messages[2].content[0].toolResult.content[1].text", "ok"),
    ]
    assert attachments(ex) == [
        ("image", "$.messages[0].content[1]", "image/png"),
        ("document", "$.messages[0].content[2]", "application/pdf"),
    ]


def test_render_unsigned_rewrites_path_model() -> None:
    again = check_render_exact(
        B,
        request(CONVERSE_PATH, CONVERSE),
        model="arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0",
    )
    assert (
        again.path == "/model/arn:aws:bedrock:us-east-1:123456789012:inference-profile"
        "%2Fus.anthropic.claude-3-5-haiku-20241022-v1:0/converse"
    )
    assert again.model.endswith("inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0")


@pytest.mark.parametrize(
    "headers",
    [SIGV4, {"x-amz-content-sha256": "b" * 64}, {"authorization": "AWS4-HMAC-SHA256 Credential=x"}],
)
def test_signed_requests_are_read_but_never_rewritten(headers: dict[str, str]) -> None:
    req = request(CONVERSE_PATH, CONVERSE, headers=headers)
    ex = B.parse("aws", req)
    assert ex.signed and len(ex.segments) == 9
    assert B.render(ex).body == req.body  # unchanged: the original bytes, signature intact
    ex.set_text(1, "[REDACTED]")
    with pytest.raises(SignedBodyError):
        B.render(ex)
    ex = B.parse("aws", req)
    ex.set_model("amazon.nova-lite-v1:0")
    with pytest.raises(SignedBodyError):
        B.render(ex)


def test_unsigned_markers() -> None:
    for headers in (
        {"authorization": "Bearer ABSKQmVkcm9ja0FQSUtleQ=="},
        {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
    ):
        assert not parse(B, CONVERSE_PATH, CONVERSE, headers=headers).signed
    assert parse(B, CONVERSE_PATH + "?X-Amz-Signature=abc", CONVERSE).signed


def test_invoke_anthropic_body() -> None:
    path = "/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke"
    ex = parse(B, path, ANTHROPIC_INVOKE)
    assert (ex.operation, ex.model, ex.max_output_tokens, ex.stream) == (
        Operation.INVOKE,
        "us.anthropic.claude-sonnet-4-20250514-v1:0",
        300,
        False,
    )
    assert segments(ex) == [
        (Role.SYSTEM, "$.system", "Be brief."),
        (Role.USER, "$.messages[0].content[0].text", "Hello Claude"),
    ]
    again = check_render_exact(
        B, request(path, ANTHROPIC_INVOKE), model="anthropic.claude-3-haiku-20240307-v1:0"
    )
    assert again.path == "/model/anthropic.claude-3-haiku-20240307-v1:0/invoke"
    assert "model" not in json.loads(B.render(ex).body)
    # an application inference profile hides the family: anthropic_version still tells
    opaque = parse(
        B,
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Aapplication-inference-profile%2Fabc/invoke",
        ANTHROPIC_INVOKE,
    )
    assert len(opaque.segments) == 2


@pytest.mark.parametrize(
    ("model", "body", "expected", "limit"),
    [
        (
            "amazon.titan-text-express-v1",
            {"inputText": "Tell me a story", "textGenerationConfig": {"maxTokenCount": 100}},
            [(Role.INPUT, "$.inputText", "Tell me a story")],
            100,
        ),
        (
            "meta.llama3-70b-instruct-v1:0",
            {"prompt": "<|begin_of_text|>Hi", "max_gen_len": 64},
            [(Role.INPUT, "$.prompt", "<|begin_of_text|>Hi")],
            64,
        ),
        (
            "cohere.embed-english-v3",
            {"texts": ["a", "b"], "input_type": "search_document"},
            [(Role.INPUT, "$.texts[0]", "a"), (Role.INPUT, "$.texts[1]", "b")],
            None,
        ),
        (
            "cohere.command-r-v1:0",
            {
                "message": "Hi",
                "preamble": "Be nice",
                "chat_history": [{"role": "CHATBOT", "message": "Yo"}],
            },
            [
                (Role.SYSTEM, "$.preamble", "Be nice"),
                (Role.ASSISTANT, "$.chat_history[0].message", "Yo"),
                (Role.INPUT, "$.message", "Hi"),
            ],
            None,
        ),
        (
            "amazon.nova-lite-v1:0",
            {
                "schemaVersion": "messages-v1",
                "system": [{"text": "Sys"}],
                "messages": [{"role": "user", "content": [{"text": "Hi Nova"}]}],
                "inferenceConfig": {"max_new_tokens": 50},
            },
            [
                (Role.SYSTEM, "$.system[0].text", "Sys"),
                (Role.USER, "$.messages[0].content[0].text", "Hi Nova"),
            ],
            50,
        ),
        (
            "openai.gpt-oss-120b-1:0",
            {"messages": [{"role": "user", "content": "Hi oss"}], "max_completion_tokens": 9},
            [(Role.USER, "$.messages[0].content", "Hi oss")],
            9,
        ),
    ],
)
def test_invoke_native_bodies(
    model: str, body: dict[str, Any], expected: list[Any], limit: int | None
) -> None:
    path = f"/model/{model}/invoke"
    ex = parse(B, path, body)
    assert segments(ex) == expected and ex.max_output_tokens == limit
    check_render_exact(B, request(path, body))


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"messages": "SECRET-PROMPT"}, "$.messages: expected an array, got string"),
        (
            {"messages": [{"role": "user", "content": [{"text": 3}]}]},
            "$.messages[0].content[0].text: expected a string",
        ),
        (
            {"messages": [], "inferenceConfig": {"maxTokens": "9"}},
            "$.inferenceConfig.maxTokens: expected an integer",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"toolResult": {"content": "SECRET-PROMPT"}}]}
                ]
            },
            "$.messages[0].content[0].toolResult.content: expected an array",
        ),
    ],
)
def test_malformed(body: dict[str, Any], where: str) -> None:
    assert_parse_error(B, CONVERSE_PATH, body, where, "SECRET-PROMPT")


def test_summarize_converse_and_invoke_headers() -> None:
    body = {
        "output": {"message": {"role": "assistant", "content": [{"text": "Here is a playlist."}]}},
        "stopReason": "end_turn",
        "usage": {
            "inputTokens": 30,
            "outputTokens": 628,
            "totalTokens": 758,
            "cacheReadInputTokens": 100,
            "cacheWriteInputTokens": 0,
        },
        "metrics": {"latencyMs": 1275},
    }
    s = B.summarize(parse(B, CONVERSE_PATH, CONVERSE), json.dumps(body).encode())
    assert s.text == "Here is a playlist." and s.model is None
    assert s.usage is not None and (
        s.usage.input_tokens,
        s.usage.output_tokens,
        s.usage.cache_read_tokens,
    ) == (130, 628, 100)
    titan = parse(B, "/model/amazon.titan-text-express-v1/invoke", {"inputText": "x"})
    headers = {"x-amzn-bedrock-input-token-count": "11", "x-amzn-bedrock-output-token-count": "22"}
    s = B.summarize(
        titan, b'{"results":[{"outputText":"Once upon","completionReason":"FINISH"}]}', headers
    )
    assert (
        s.text == "Once upon"
        and s.usage is not None
        and (s.usage.input_tokens, s.usage.output_tokens) == (11, 22)
    )
    s = B.summarize(
        titan, b'{"inputTextTokenCount":5,"results":[{"tokenCount":7,"outputText":"x"}]}'
    )
    assert s.usage is not None and (s.usage.input_tokens, s.usage.output_tokens) == (5, 7)
    claude = parse(B, "/model/anthropic.claude-3-haiku-20240307-v1:0/invoke", ANTHROPIC_INVOKE)
    msg = {
        "id": "msg_bdrk_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-3-haiku-20240307",
        "content": [{"type": "text", "text": "Hi"}],
        "usage": {"input_tokens": 12, "output_tokens": 6},
    }
    s = B.summarize(claude, json.dumps(msg).encode(), headers)
    assert (
        s.usage is not None
        and (s.usage.input_tokens, s.usage.output_tokens) == (12, 6)
        and s.model == "claude-3-haiku-20240307"
    )


def _pad(payload: dict[str, Any]) -> bytes:
    return json.dumps(
        {**payload, "p": "abcdefghijklmnopqrstuvwxyzABCDEF"}, ensure_ascii=False
    ).encode()


CONVERSE_STREAM = (
    encode_event("messageStart", _pad({"role": "assistant"}))
    + encode_event("contentBlockDelta", _pad({"contentBlockIndex": 0, "delta": {"text": "Voici "}}))
    + encode_event(
        "contentBlockDelta", _pad({"contentBlockIndex": 0, "delta": {"text": "la liste ✓"}})
    )
    + encode_event("contentBlockStop", _pad({"contentBlockIndex": 0}))
    + encode_event("messageStop", _pad({"stopReason": "end_turn"}))
    + encode_event(
        "metadata",
        _pad(
            {
                "usage": {
                    "inputTokens": 40,
                    "outputTokens": 9,
                    "totalTokens": 49,
                    "cacheReadInputTokens": 10,
                },
                "metrics": {"latencyMs": 300},
            }
        ),
    )
)


@pytest.mark.parametrize("size", CHUNK_SIZES)
def test_converse_stream(size: int) -> None:
    ex = parse(B, CONVERSE_PATH.replace("/converse", "/converse-stream"), CONVERSE)
    assert ex.stream
    reader = B.stream_reader(ex, "application/vnd.amazon.eventstream")
    assert run_stream(reader, CONVERSE_STREAM, size) == CONVERSE_STREAM
    s = reader.summary
    assert s.text == "Voici la liste ✓"
    assert s.usage is not None and (
        s.usage.input_tokens,
        s.usage.output_tokens,
        s.usage.cache_read_tokens,
    ) == (50, 9, 10)


def _chunk(event: dict[str, Any]) -> bytes:
    encoded = base64.b64encode(json.dumps(event).encode()).decode()
    return encode_event("chunk", json.dumps({"bytes": encoded, "p": "abcd"}).encode())


INVOKE_STREAM = (
    _chunk(
        {
            "type": "message_start",
            "message": {
                "id": "msg_bdrk_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-3-5-sonnet-20240620",
                "content": [],
                "usage": {"input_tokens": 14, "output_tokens": 1},
            },
        }
    )
    + _chunk(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    )
    + _chunk(
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Hello"},
        }
    )
    + _chunk(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}
    )
    + _chunk({"type": "content_block_stop", "index": 0})
    + _chunk(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 5},
        }
    )
    + _chunk(
        {
            "type": "message_stop",
            "amazon-bedrock-invocationMetrics": {
                "inputTokenCount": 14,
                "outputTokenCount": 5,
                "invocationLatency": 500,
                "firstByteLatency": 300,
            },
        }
    )
)


@pytest.mark.parametrize("size", CHUNK_SIZES)
def test_invoke_stream_anthropic(size: int) -> None:
    ex = parse(B, f"/model/{MODEL}/invoke-with-response-stream", ANTHROPIC_INVOKE)
    assert ex.stream and ex.operation == Operation.INVOKE
    reader = B.stream_reader(ex, "application/vnd.amazon.eventstream")
    assert run_stream(reader, INVOKE_STREAM, size) == INVOKE_STREAM
    s = reader.summary
    assert (s.model, s.text) == ("claude-3-5-sonnet-20240620", "Hello!")
    assert s.usage is not None and (s.usage.input_tokens, s.usage.output_tokens) == (14, 5)


def test_invoke_stream_native_uses_invocation_metrics() -> None:
    ex = parse(
        B, "/model/meta.llama3-8b-instruct-v1:0/invoke-with-response-stream", {"prompt": "Hi"}
    )
    stream = (
        _chunk(
            {
                "generation": "Hel",
                "prompt_token_count": 3,
                "generation_token_count": 1,
                "stop_reason": None,
            }
        )
        + _chunk(
            {
                "generation": "lo",
                "prompt_token_count": None,
                "generation_token_count": 2,
                "stop_reason": "stop",
                "amazon-bedrock-invocationMetrics": {
                    "inputTokenCount": 3,
                    "outputTokenCount": 2,
                    "invocationLatency": 1,
                    "firstByteLatency": 1,
                },
            }
        )
        + encode_exception("throttlingException", b'{"message":"Too many requests"}')
    )
    reader = B.stream_reader(ex, "application/vnd.amazon.eventstream")
    assert run_stream(reader, stream, 2) == stream
    assert reader.summary.text == "Hello"
    assert reader.summary.usage is not None and (
        reader.summary.usage.input_tokens,
        reader.summary.usage.output_tokens,
    ) == (3, 2)


def test_corrupt_stream_is_still_forwarded() -> None:
    reader = B.stream_reader(
        parse(B, CONVERSE_PATH, CONVERSE), "application/vnd.amazon.eventstream"
    )
    broken = bytearray(CONVERSE_STREAM)
    broken[20] ^= 0xFF
    assert run_stream(reader, bytes(broken), 64) == bytes(broken)
    assert reader.summary.usage is None


@pytest.mark.parametrize(
    ("refusal", "status", "kind"),
    [
        (Refusal.INVALID_REQUEST, 400, "ValidationException"),
        (Refusal.AUTHENTICATION, 401, "UnrecognizedClientException"),
        (Refusal.PERMISSION, 403, "AccessDeniedException"),
        (Refusal.NOT_FOUND, 404, "ResourceNotFoundException"),
        (Refusal.RATE_LIMIT, 429, "ServiceQuotaExceededException"),
        (Refusal.GATEWAY, 502, "InternalServerException"),
    ],
)
def test_error_shape(refusal: str, status: int, kind: str) -> None:
    reply = B.error_reply(status, refusal, "Blocked by policy")
    assert reply.status == status and json.loads(reply.body) == {"message": "Blocked by policy"}
    assert reply.headers["x-amzn-ErrorType"] == kind and reply.headers["x-should-retry"] == "false"
