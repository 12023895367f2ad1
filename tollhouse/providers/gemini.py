"""The Gemini API (generativelanguage.googleapis.com).

``/v1beta/models/{model}:generateContent`` and ``:streamGenerateContent`` (SSE with ``?alt=sse``,
else one JSON array sent piece by piece); ``:countTokens`` is COUNT_TOKENS and ``:embedContent``
and ``:batchEmbedContents`` are EMBEDDINGS. The model lives in the path; ``set_model`` rewrites
it there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote, unquote

from tollhouse.exchange import Exchange, Operation
from tollhouse.providers import gemini_format
from tollhouse.providers.base import (
    ErrorReply,
    ParseError,
    Refusal,
    Request,
    ResponseSummary,
    StreamReader,
)
from tollhouse.providers.common import MAX_PENDING, JsonAdapter, SseReader, json_error
from tollhouse.providers.jsonbody import Collected, load_object, try_load
from tollhouse.providers.jsonstream import JsonArrayParser
from tollhouse.providers.sse import SseEvent

_PATH = re.compile(
    r"^/(?:v1|v1beta|v1alpha)/(?:models|tunedModels)/(?P<model>[^/:]+)"
    r":(?P<action>generateContent|streamGenerateContent|countTokens|embedContent|batchEmbedContents)$"
)
ACTIONS = {
    "generateContent": Operation.GENERATE,
    "streamGenerateContent": Operation.GENERATE,
    "countTokens": Operation.COUNT_TOKENS,
    "embedContent": Operation.EMBEDDINGS,
    "batchEmbedContents": Operation.EMBEDDINGS,
}
_STATUS = {
    Refusal.INVALID_REQUEST: "INVALID_ARGUMENT",
    Refusal.AUTHENTICATION: "UNAUTHENTICATED",
    Refusal.PERMISSION: "PERMISSION_DENIED",
    Refusal.NOT_FOUND: "NOT_FOUND",
    Refusal.RATE_LIMIT: "RESOURCE_EXHAUSTED",
    Refusal.GATEWAY: "INTERNAL",
}


def error_reply(status: int, refusal: str, message: str) -> ErrorReply:
    """A Google API error: ``{"error": {"code": 403, "message": ..., "status": ...}}``."""
    code = _STATUS.get(refusal, "INVALID_ARGUMENT")
    return json_error(status, {"error": {"code": status, "message": message, "status": code}})


def parse_google(exchange: Exchange, action: str, body: dict[str, object]) -> Exchange:
    """Fill ``exchange`` from a Gemini body for ``action`` (shared with Vertex AI)."""
    c = Collected()
    if action in ("generateContent", "streamGenerateContent"):
        exchange.max_output_tokens = gemini_format.parse_generate(body, c)
        exchange.choices = gemini_format.candidate_count(body)
        exchange.stream = action == "streamGenerateContent"
    elif action == "countTokens":
        gemini_format.parse_count_tokens(body, c)
    else:
        gemini_format.parse_embed(body, c)
    exchange.segments = c.segments
    exchange.attachments = c.attachments
    return exchange


def replace_model(path: str, pattern: re.Pattern[str], model: str) -> str:
    """``path`` with the ``model`` group of ``pattern`` replaced; the query string is kept."""
    bare, sep, query = path.partition("?")
    m = pattern.match(bare)
    if not m:
        raise ParseError(f"{bare}: the model is not in the path")
    name = model.rsplit("/", 1)[-1]  # "models/gemini-2.5-pro" → "gemini-2.5-pro"
    start, end = m.span("model")
    return bare[:start] + quote(name, safe="@") + bare[end:] + sep + query


class GenerateSseReader(SseReader):
    """``streamGenerateContent?alt=sse``: each event is a GenerateContentResponse."""

    def __init__(self) -> None:
        super().__init__()
        self._events = gemini_format.GenerateEvents(self.summary, self.text)

    def on_event(self, event: SseEvent) -> bool:
        self._events.handle(try_load(event.data))
        self.finished = self._events.finished
        return False


class GenerateArrayReader(StreamReader):
    """``streamGenerateContent`` without ``alt=sse``: one JSON array, sent piece by piece."""

    def __init__(self) -> None:
        super().__init__()
        self._parser: JsonArrayParser | None = JsonArrayParser()
        self.text = gemini_format.TextCollector()
        self._events = gemini_format.GenerateEvents(self.summary, self.text)

    def feed(self, chunk: bytes) -> bytes:
        if self._parser is not None:
            for element in self._parser.feed(chunk):
                self._events.handle(element)
            self.finished = self._events.finished
            if self._parser.pending_size > MAX_PENDING:
                self._parser = None  # a runaway element: stop reading, keep forwarding
        return chunk

    def close(self) -> bytes:
        self.summary.text = self.text.value
        return b""


def google_stream_reader(content_type: str) -> StreamReader:
    """The reader for a Gemini stream, by the response's content type."""
    if "text/event-stream" in content_type.lower():
        return GenerateSseReader()
    return GenerateArrayReader()


class GeminiAdapter(JsonAdapter):
    """The Gemini Developer API."""

    api = "gemini"

    def operation(self, method: str, path: str) -> str | None:
        if method.upper() != "POST":
            return None
        m = _PATH.match(path.split("?", 1)[0])
        return ACTIONS[m["action"]] if m else None

    def parse(self, provider: str, request: Request) -> Exchange:
        m = _PATH.match(request.path.split("?", 1)[0])
        if m is None or request.method.upper() != "POST":
            raise ParseError(f"{request.method} {request.path.split('?')[0]}: not an endpoint")
        body = load_object(request.body)
        exchange = Exchange(
            provider=provider,
            api=self.api,
            operation=ACTIONS[m["action"]],
            path=request.path,
            model=unquote(m["model"]),
            body=body,
            raw_body=request.body,
        )
        return parse_google(exchange, m["action"], body)

    def write_model(self, exchange: Exchange, model: str) -> tuple[str, bool]:
        return replace_model(exchange.path, _PATH, model), False

    def summarize(
        self, exchange: Exchange, body: bytes, headers: Mapping[str, str] | None = None
    ) -> ResponseSummary:
        if exchange.operation == Operation.COUNT_TOKENS:
            return ResponseSummary()  # {"totalTokens": n} is a count, not a bill
        return gemini_format.summarize(try_load(body))

    def stream_reader(self, exchange: Exchange, content_type: str) -> StreamReader:
        return google_stream_reader(content_type)

    def error_reply(self, status: int, refusal: str, message: str) -> ErrorReply:
        return error_reply(status, refusal, message)
