"""The Anthropic API: ``/v1/messages`` and ``/v1/messages/count_tokens``.

count_tokens is its own operation (COUNT_TOKENS): the prompt reaches the provider, so it is parsed
and scanned like any message, but nothing is generated and its response carries no usage to bill.
Message batches (``/v1/messages/batches``) are not parsed: they resolve as unknown endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping

from tollhouse.exchange import Exchange, Operation
from tollhouse.providers import anthropic_format
from tollhouse.providers.base import (
    ErrorReply,
    ParseError,
    Refusal,
    Request,
    ResponseSummary,
    StreamReader,
)
from tollhouse.providers.common import JsonAdapter, SseReader, json_error
from tollhouse.providers.jsonbody import Collected, load_object, opt_bool, opt_str, try_load
from tollhouse.providers.sse import SseEvent

_ERROR_TYPES = {
    Refusal.INVALID_REQUEST: "invalid_request_error",
    Refusal.AUTHENTICATION: "authentication_error",
    Refusal.PERMISSION: "permission_error",
    Refusal.NOT_FOUND: "not_found_error",
    Refusal.RATE_LIMIT: "rate_limit_error",
    Refusal.GATEWAY: "api_error",
}
_SILENT_EVENTS = frozenset({"ping", "content_block_start", "content_block_stop", "message_stop"})


def error_reply(status: int, refusal: str, message: str) -> ErrorReply:
    """An Anthropic error: ``{"type": "error", "error": {"type": ..., "message": ...}}``."""
    kind = _ERROR_TYPES.get(refusal, "invalid_request_error")
    return json_error(status, {"type": "error", "error": {"type": kind, "message": message}})


def parse_into(
    exchange: Exchange, body: dict[str, object], *, model_in_body: bool = True
) -> Exchange:
    """Fill ``exchange`` from a Messages body (shared with Vertex AI and Bedrock)."""
    c = Collected()
    exchange.max_output_tokens = anthropic_format.parse_messages(body, c)
    exchange.segments = c.segments
    exchange.attachments = c.attachments
    exchange.stream = opt_bool(body, "stream", ())
    if model_in_body:
        exchange.model = exchange.model_requested = opt_str(body, "model", ())
    return exchange


class MessagesStreamReader(SseReader):
    """A Messages SSE stream: text deltas, model and cumulative usage."""

    def __init__(self) -> None:
        super().__init__()
        self._events = anthropic_format.MessagesEvents(self.summary, self.text)

    def on_event(self, event: SseEvent) -> bool:
        if event.event == "message_stop":
            self._events.stopped = True
        if event.event in _SILENT_EVENTS:
            self.finished = self._events.finished
            return False
        data = try_load(event.data)
        if isinstance(data, dict):
            self._events.handle(data)
        self.finished = self._events.finished
        return False


class AnthropicAdapter(JsonAdapter):
    """The Anthropic Messages API, on api.anthropic.com or anything serving the same paths."""

    api = "anthropic"

    def operation(self, method: str, path: str) -> str | None:
        if method.upper() != "POST":
            return None
        bare = path.split("?", 1)[0].rstrip("/")
        if bare.endswith("/v1/messages"):
            return Operation.MESSAGES
        if bare.endswith("/v1/messages/count_tokens"):
            return Operation.COUNT_TOKENS
        return None

    def parse(self, provider: str, request: Request) -> Exchange:
        operation = self.operation(request.method, request.path)
        if operation is None:
            raise ParseError(f"{request.method} {request.path.split('?')[0]}: not an endpoint")
        body = load_object(request.body)
        exchange = Exchange(
            provider=provider,
            api=self.api,
            operation=operation,
            path=request.path,
            body=body,
            raw_body=request.body,
        )
        return parse_into(exchange, body)

    def summarize(
        self, exchange: Exchange, body: bytes, headers: Mapping[str, str] | None = None
    ) -> ResponseSummary:
        if exchange.operation == Operation.COUNT_TOKENS:
            return ResponseSummary()  # {"input_tokens": n} is a count, not a bill
        return anthropic_format.summarize(try_load(body))

    def stream_reader(self, exchange: Exchange, content_type: str) -> StreamReader:
        return MessagesStreamReader()

    def error_reply(self, status: int, refusal: str, message: str) -> ErrorReply:
        return error_reply(status, refusal, message)
