"""The adapter registry: family adapters first, OpenAI-compatible fallback, unknown endpoints."""

from __future__ import annotations

import json

import pytest

from tollhouse.exchange import Operation
from tollhouse.providers import ADAPTERS, error_reply, resolve
from tollhouse.providers.base import Refusal


def test_every_family_is_registered() -> None:
    assert set(ADAPTERS) == {
        "openai",
        "azure",
        "anthropic",
        "gemini",
        "vertex",
        "bedrock",
        "cohere",
    }
    assert all(adapter.api == api for api, adapter in ADAPTERS.items())


@pytest.mark.parametrize(
    ("api", "path", "adapter", "operation"),
    [
        ("openai", "/v1/chat/completions", "openai", Operation.CHAT),
        ("openai", "/v1/responses", "openai", Operation.RESPONSES),
        ("openai", "/v1/completions", "openai", Operation.COMPLETIONS),
        ("openai", "/v1/embeddings", "openai", Operation.EMBEDDINGS),
        (
            "azure",
            "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21",
            "azure",
            Operation.CHAT,
        ),
        ("anthropic", "/v1/messages", "anthropic", Operation.MESSAGES),
        ("anthropic", "/v1/messages/count_tokens", "anthropic", Operation.COUNT_TOKENS),
        ("anthropic", "/v1/chat/completions", "openai", Operation.CHAT),
        (
            "gemini",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            "gemini",
            Operation.GENERATE,
        ),
        ("gemini", "/v1beta/openai/chat/completions", "openai", Operation.CHAT),
        ("gemini", "/v1beta/openai/embeddings", "openai", Operation.EMBEDDINGS),
        (
            "vertex",
            "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent",
            "vertex",
            Operation.GENERATE,
        ),
        (
            "vertex",
            "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:streamRawPredict",
            "vertex",
            Operation.MESSAGES,
        ),
        (
            "vertex",
            "/v1beta1/projects/p/locations/global/endpoints/openapi/chat/completions",
            "openai",
            Operation.CHAT,
        ),
        (
            "bedrock",
            "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse",
            "bedrock",
            Operation.CONVERSE,
        ),
        (
            "bedrock",
            "/model/us.anthropic.claude-sonnet-4-20250514-v1:0/invoke-with-response-stream",
            "bedrock",
            Operation.INVOKE,
        ),
        ("cohere", "/v2/chat", "cohere", Operation.CHAT),
        ("cohere", "/compatibility/v1/chat/completions", "openai", Operation.CHAT),
        ("openai", "/openai/v1/chat/completions", "openai", Operation.CHAT),  # Groq
        ("openai", "/inference/v1/chat/completions", "openai", Operation.CHAT),  # Fireworks
        ("openai", "/api/v1/chat/completions", "openai", Operation.CHAT),  # OpenRouter
        ("openai", "/chat/completions", "openai", Operation.CHAT),  # DeepSeek
        ("mistral", "/v1/chat/completions", "openai", Operation.CHAT),  # a family with no adapter
    ],
)
def test_resolve(api: str, path: str, adapter: str, operation: str) -> None:
    found = resolve(api, "POST", path)
    assert found is not None
    assert (found[0].api, found[1]) == (adapter, operation)


@pytest.mark.parametrize(
    ("api", "method", "path"),
    [
        ("openai", "GET", "/v1/models"),
        ("openai", "GET", "/v1/chat/completions"),
        ("openai", "POST", "/v1/files"),
        ("openai", "POST", "/v1/audio/transcriptions"),
        ("openai", "GET", "/v1/responses/resp_123"),
        ("openai", "POST", "/v1/responses/resp_123/cancel"),
        ("openai", "POST", "/v1/images/generations"),
        ("anthropic", "POST", "/v1/messages/batches"),
        ("anthropic", "POST", "/v1/complete"),
        ("gemini", "POST", "/v1beta/models/imagen-3.0:predict"),
        ("gemini", "GET", "/v1beta/models"),
        ("bedrock", "POST", "/guardrail/g1/version/1/apply"),
        ("cohere", "POST", "/v1/chat"),
        ("nope", "POST", "/anything"),
    ],
)
def test_unknown_endpoints_resolve_to_none(api: str, method: str, path: str) -> None:
    assert resolve(api, method, path) is None


def test_error_reply_by_family() -> None:
    assert "error" in json.loads(error_reply("openai", 403, Refusal.PERMISSION, "no").body)
    assert (
        json.loads(error_reply("anthropic", 403, Refusal.PERMISSION, "no").body)["type"] == "error"
    )
    assert (
        json.loads(error_reply("gemini", 403, Refusal.PERMISSION, "no").body)["error"]["status"]
        == "PERMISSION_DENIED"
    )
    assert (
        error_reply("bedrock", 403, Refusal.PERMISSION, "no").headers["x-amzn-ErrorType"]
        == "AccessDeniedException"
    )
    assert (
        json.loads(error_reply("unknown-family", 403, Refusal.PERMISSION, "no").body)["error"][
            "message"
        ]
        == "no"
    )
    for api in ADAPTERS:
        reply = error_reply(api, 429, Refusal.RATE_LIMIT, "budget exhausted")
        assert reply.status == 429 and reply.headers["x-should-retry"] == "false"
        assert reply.headers["content-type"] == "application/json"
        assert b"budget exhausted" in reply.body
