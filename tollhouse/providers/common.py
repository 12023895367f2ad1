"""What the JSON adapters share: rendering, error replies, and the SSE reader they build on."""

from __future__ import annotations

from typing import Any

from tollhouse.exchange import Exchange
from tollhouse.providers.base import (
    Adapter,
    ErrorReply,
    Refusal,
    Rendered,
    SignedBodyError,
    StreamReader,
)
from tollhouse.providers.jsonbody import TextCollector, dump
from tollhouse.providers.sse import SseEvent, SseParser
from tollhouse.providers.walk import BODY_FORMS, write_back

MAX_PENDING = 16 * 1024 * 1024  # a stream event larger than this is forwarded unparsed

STATUS = {
    Refusal.INVALID_REQUEST: 400,
    Refusal.AUTHENTICATION: 401,
    Refusal.PERMISSION: 403,
    Refusal.NOT_FOUND: 404,
    Refusal.RATE_LIMIT: 429,
    Refusal.GATEWAY: 502,
}
"""The HTTP status each refusal usually travels with."""


def json_error(status: int, payload: Any, headers: dict[str, str] | None = None) -> ErrorReply:
    """An error reply: JSON body, and ``x-should-retry: false`` so SDKs do not retry a refusal."""
    out = {"content-type": "application/json", "x-should-retry": "false"}
    if headers:
        out.update(headers)
    return ErrorReply(status, dump(payload), out)


class JsonAdapter(Adapter):
    """An adapter whose request body is JSON. Renders only what changed, serializing once."""

    def render(self, exchange: Exchange) -> Rendered:
        if not exchange.changed:
            return Rendered(exchange.path, exchange.raw_body)
        if exchange.signed:
            raise SignedBodyError(
                f"{exchange.provider} {exchange.operation}: the request is signed (AWS SigV4); "
                "its body and path cannot be rewritten"
            )
        changed = [exchange.segments[i] for i in sorted(exchange.changed_segments)]
        in_body = [s for s in changed if s.form in BODY_FORMS]
        dirty = bool(in_body) or exchange.body_changed
        write_back(exchange.body, in_body)
        path = exchange.path
        if exchange.model_changed and exchange.model is not None:
            path, model_in_body = self.write_model(exchange, exchange.model)
            dirty = dirty or model_in_body
        return Rendered(path, dump(exchange.body) if dirty else exchange.raw_body)

    def write_model(self, exchange: Exchange, model: str) -> tuple[str, bool]:
        """Put ``model`` where this format keeps it. Returns the new path and whether the body
        changed. The default is a top-level ``model`` field."""
        exchange.body["model"] = model
        return exchange.path, True


class SseReader(StreamReader):
    """A stream reader for SSE. Subclasses implement :meth:`on_event`.

    With ``holding`` False every chunk is forwarded as it arrives and only parsed on the side.
    With ``holding`` True (the reader may drop events) complete events are forwarded as soon as
    they are complete and only the incomplete one is held.
    """

    def __init__(self, holding: bool = False) -> None:
        super().__init__()
        self._parser = SseParser()
        self._holding = holding
        self._gave_up = False
        self.text = TextCollector()

    def on_event(self, event: SseEvent) -> bool:
        """Read one complete event. Return True to drop it (only honoured when holding)."""
        raise NotImplementedError

    def feed(self, chunk: bytes) -> bytes:
        if self._gave_up:
            return chunk
        kept = self._handle(self._parser.feed(chunk))
        out = kept if self._holding else chunk
        if self._parser.pending_size > MAX_PENDING:
            # A runaway event: stop parsing rather than hold it; the stream itself flows on.
            self._gave_up = True
            held = self._parser.take_pending()
            if self._holding:
                out += held
        return out

    def close(self) -> bytes:
        out = b""
        if not self._gave_up:
            kept = self._handle(self._parser.close())
            out = kept if self._holding else b""
        self.summary.text = self.text.value
        return out

    def _handle(self, events: list[SseEvent]) -> bytes:
        kept: list[bytes] = []
        for event in events:
            drop = bool(event.data) and self.on_event(event)
            if not drop:
                kept.append(event.raw)
        return b"".join(kept)
