"""The OpenAI wire format: chat completions, Responses, legacy completions, embeddings.

Many providers serve the same format under other prefixes (``/v1beta/openai/chat/completions``,
``/compatibility/v1/chat/completions``, ``/openai/v1/...``, ``/api/v1/...``, DeepSeek's bare
``/chat/completions``), so this adapter knows an endpoint by its last path segments alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tollhouse.exchange import Exchange, Operation, Usage
from tollhouse.providers.base import (
    ErrorReply,
    ParseError,
    Refusal,
    Request,
    ResponseSummary,
    StreamReader,
)
from tollhouse.providers.common import JsonAdapter, SseReader, json_error
from tollhouse.providers.jsonbody import (
    Collected,
    TextCollector,
    as_int,
    dig,
    load_object,
    opt_bool,
    opt_int,
    opt_str,
    try_load,
)
from tollhouse.providers.openai_request import (
    parse_chat,
    parse_completions,
    parse_embeddings,
    parse_responses,
)
from tollhouse.providers.sse import SseEvent

# Longest first: "/chat/completions" also ends with "/completions".
_SUFFIXES = (
    ("/chat/completions", Operation.CHAT),
    ("/completions", Operation.COMPLETIONS),
    ("/embeddings", Operation.EMBEDDINGS),
    ("/responses", Operation.RESPONSES),
)

_PARSERS: dict[str, Callable[[dict[str, Any], Collected], int | None]] = {
    Operation.CHAT: parse_chat,
    Operation.COMPLETIONS: parse_completions,
    Operation.EMBEDDINGS: parse_embeddings,
    Operation.RESPONSES: parse_responses,
}

# type, code per refusal. A budget cap reads as OpenAI's own "out of credits" error.
_ERRORS: dict[str, tuple[str, str | None]] = {
    Refusal.INVALID_REQUEST: ("invalid_request_error", None),
    Refusal.AUTHENTICATION: ("authentication_error", None),
    Refusal.PERMISSION: ("permission_error", None),
    Refusal.NOT_FOUND: ("invalid_request_error", "not_found"),
    Refusal.RATE_LIMIT: ("insufficient_quota", "insufficient_quota"),
    Refusal.GATEWAY: ("server_error", None),
}


def endpoint_operation(method: str, path: str) -> str | None:
    """The operation of an OpenAI-compatible endpoint, judged by the path's ending."""
    if method.upper() != "POST":
        return None
    bare = path.split("?", 1)[0].rstrip("/")
    for suffix, operation in _SUFFIXES:
        if bare.endswith(suffix):
            return operation
    return None


class OpenAIAdapter(JsonAdapter):
    """OpenAI and every OpenAI-compatible endpoint."""

    api = "openai"

    def operation(self, method: str, path: str) -> str | None:
        return endpoint_operation(method, path)

    def parse(self, provider: str, request: Request) -> Exchange:
        operation = self.operation(request.method, request.path)
        if operation is None:
            raise ParseError(f"{request.method} {request.path.split('?')[0]}: not an endpoint")
        body = load_object(request.body)
        c = Collected()
        limit = _PARSERS[operation](body, c)
        return Exchange(
            provider=provider,
            api=self.api,
            operation=operation,
            path=request.path,
            model=opt_str(body, "model", ()),
            stream=operation != Operation.EMBEDDINGS and opt_bool(body, "stream", ()),
            max_output_tokens=limit,
            choices=max(opt_int(body, "n", ()) or 1, 1),
            segments=c.segments,
            attachments=c.attachments,
            body=body,
            raw_body=request.body,
        )

    def ask_for_stream_usage(self, exchange: Exchange) -> bool:
        """Set ``stream_options.include_usage``; the reader then drops the usage-only chunk."""
        if not exchange.stream or exchange.signed:
            return False
        if exchange.operation not in (Operation.CHAT, Operation.COMPLETIONS):
            return False  # Responses streams always end with usage
        options = exchange.body.get("stream_options")
        if options is None:
            exchange.body["stream_options"] = {"include_usage": True}
        elif isinstance(options, dict) and options.get("include_usage") is not True:
            options["include_usage"] = True
        else:
            return False  # the client asked already, or sent something we leave to the provider
        exchange.body_changed = True
        exchange.drop_stream_usage = True
        return True

    def summarize(
        self, exchange: Exchange, body: bytes, headers: Mapping[str, str] | None = None
    ) -> ResponseSummary:
        data = try_load(body)
        if not isinstance(data, dict):
            return ResponseSummary()
        model = data.get("model")
        summary = ResponseSummary(model=model if isinstance(model, str) and model else None)
        text = TextCollector()
        if exchange.operation == Operation.RESPONSES:
            summary.usage = responses_usage(data.get("usage"))
            for item in data.get("output") or ():
                if isinstance(item, dict) and item.get("type") == "message":
                    for part in item.get("content") or ():
                        text.add(dig(part, "text"))
        else:
            summary.usage = chat_usage(data.get("usage"))
            for choice in data.get("choices") or ():
                text.add(dig(choice, "message", "content"))
                text.add(dig(choice, "text"))
        summary.text = text.value
        return summary

    def stream_reader(self, exchange: Exchange, content_type: str) -> StreamReader:
        if exchange.operation == Operation.RESPONSES:
            return ResponsesStreamReader()
        return ChatStreamReader(drop_usage=exchange.drop_stream_usage)

    def error_reply(self, status: int, refusal: str, message: str) -> ErrorReply:
        kind, code = _ERRORS.get(refusal, ("invalid_request_error", None))
        error = {"message": message, "type": kind, "param": None, "code": code}
        return json_error(status, {"error": error})


def chat_usage(usage: Any) -> Usage | None:
    """Chat / completions / embeddings usage; DeepSeek's cache-hit count where details lack it."""
    if not isinstance(usage, dict):
        return None
    cached = dig(usage, "prompt_tokens_details", "cached_tokens")
    if cached is None:
        cached = usage.get("prompt_cache_hit_tokens")
    return Usage(
        input_tokens=as_int(usage.get("prompt_tokens")),
        output_tokens=as_int(usage.get("completion_tokens")),
        cache_read_tokens=as_int(cached),
    )


def responses_usage(usage: Any) -> Usage | None:
    """Responses API usage: ``input_tokens`` already counts the cached ones."""
    if not isinstance(usage, dict):
        return None
    return Usage(
        input_tokens=as_int(usage.get("input_tokens")),
        output_tokens=as_int(usage.get("output_tokens")),
        cache_read_tokens=as_int(dig(usage, "input_tokens_details", "cached_tokens")),
    )


class ChatStreamReader(SseReader):
    """Chat and completions streams. With ``drop_usage`` the usage-only chunk that the gateway
    asked for (``choices: []`` with ``usage``) is read and then kept from the client."""

    def __init__(self, drop_usage: bool = False) -> None:
        super().__init__(holding=drop_usage)
        self._drop_usage = drop_usage

    def on_event(self, event: SseEvent) -> bool:
        if event.data == "[DONE]":
            self.finished = self.summary.usage is not None
            return False
        data = try_load(event.data)
        if not isinstance(data, dict):
            return False
        model = data.get("model")
        if not self.summary.model and isinstance(model, str) and model:
            # (Azure opens with a prompt-filter chunk whose model is "".)
            self.summary.model = model
        usage = data.get("usage")
        if not isinstance(usage, dict):
            usage = dig(data, "x_groq", "usage")  # Groq puts it here
        if isinstance(usage, dict):
            self.summary.usage = chat_usage(usage)
        choices = data.get("choices")
        if isinstance(choices, list):
            for choice in choices:
                self.text.add(dig(choice, "delta", "content"))
                self.text.add(dig(choice, "text"))
        return self._drop_usage and choices == [] and isinstance(usage, dict)


_RESPONSE_EVENTS = frozenset(
    {
        "response.created",
        "response.output_text.delta",
        "response.completed",
        "response.incomplete",
        "response.failed",
    }
)


class ResponsesStreamReader(SseReader):
    """Responses API streams: text deltas, and usage in the final ``response.*`` event."""

    def on_event(self, event: SseEvent) -> bool:
        if event.event is not None and event.event not in _RESPONSE_EVENTS:
            return False  # skip parsing the many events that carry nothing we read
        data = try_load(event.data)
        if not isinstance(data, dict):
            return False
        if data.get("type") == "response.output_text.delta":
            self.text.add(data.get("delta"))
            return False
        response = data.get("response")
        if isinstance(response, dict):
            if isinstance(response.get("model"), str):
                self.summary.model = response["model"]
            usage = responses_usage(response.get("usage"))
            if usage is not None:
                self.summary.usage = usage
            # The last event of an answer that ended (completed, or cut at its token limit).
            if data.get("type") in ("response.completed", "response.incomplete"):
                self.finished = self.summary.usage is not None
        return False
