"""Provider adapters: the only code that knows a wire format.

``ADAPTERS`` maps each API family (as named in rules/hosts.yaml) to its adapter; :func:`resolve`
finds the adapter and operation for a request, falling back to the OpenAI adapter for the
OpenAI-compatible endpoints most providers also serve.
"""

from __future__ import annotations

from tollhouse.providers.anthropic import AnthropicAdapter
from tollhouse.providers.azure import AzureOpenAIAdapter
from tollhouse.providers.base import Adapter, ErrorReply
from tollhouse.providers.bedrock import BedrockAdapter
from tollhouse.providers.cohere import CohereAdapter
from tollhouse.providers.gemini import GeminiAdapter
from tollhouse.providers.openai import OpenAIAdapter
from tollhouse.providers.vertex import VertexAdapter

ADAPTERS: dict[str, Adapter] = {
    adapter.api: adapter
    for adapter in (
        OpenAIAdapter(),
        AzureOpenAIAdapter(),
        AnthropicAdapter(),
        GeminiAdapter(),
        VertexAdapter(),
        BedrockAdapter(),
        CohereAdapter(),
    )
}


def resolve(api: str, method: str, path: str) -> tuple[Adapter, str] | None:
    """The adapter and operation for ``method path`` on a host of API family ``api``.

    The family's own adapter is tried first, then the OpenAI adapter (Gemini, Cohere, Anthropic,
    Groq, Fireworks, OpenRouter, DeepSeek... all serve ``.../chat/completions``). None means an
    endpoint no adapter understands: the gateway records it as unknown and passes it.
    """
    for adapter in (ADAPTERS.get(api), ADAPTERS["openai"]):
        if adapter is not None:
            operation = adapter.operation(method, path)
            if operation is not None:
                return adapter, operation
    return None


def error_reply(api: str, status: int, refusal: str, message: str) -> ErrorReply:
    """A refusal in the error shape of API family ``api`` (OpenAI's for an unknown family)."""
    return ADAPTERS.get(api, ADAPTERS["openai"]).error_reply(status, refusal, message)


__all__ = ["ADAPTERS", "error_reply", "resolve"]
