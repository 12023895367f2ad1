"""Vertex AI: Google's Gemini models and Anthropic's Claude models, both with the model in the path.

``/v1/projects/{p}/locations/{l}/publishers/google/models/{model}:generateContent`` (and
``streamGenerateContent``, ``countTokens``, ``embedContent``) take the Gemini body;
``.../publishers/anthropic/models/{model}:rawPredict`` and ``:streamRawPredict`` take the Anthropic
Messages body with ``anthropic_version`` and no ``model``. ``.../models/count-tokens:rawPredict`` is
Anthropic's count_tokens, model in the body. Express mode drops the ``projects/.../locations/...``
prefix. Errors come in Google's shape, as Vertex's own front end answers for every publisher.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote

from tollhouse.exchange import Exchange, Operation
from tollhouse.providers import anthropic_format, gemini_format
from tollhouse.providers.anthropic import MessagesStreamReader, parse_into
from tollhouse.providers.base import ErrorReply, ParseError, Request, ResponseSummary, StreamReader
from tollhouse.providers.common import JsonAdapter
from tollhouse.providers.gemini import (
    ACTIONS,
    error_reply,
    google_stream_reader,
    parse_google,
    replace_model,
)
from tollhouse.providers.jsonbody import load_object, try_load

_PATH = re.compile(
    r"^/(?:v1|v1beta1)/(?:projects/[^/]+/locations/[^/]+/)?publishers/"
    r"(?:google/models/(?P<gmodel>[^/:]+):(?P<gaction>"
    r"generateContent|streamGenerateContent|countTokens|embedContent)"
    r"|anthropic/models/(?P<amodel>[^/:]+):(?P<aaction>rawPredict|streamRawPredict))$"
)
_MODEL = re.compile(r"^.*?/models/(?P<model>[^/:]+):")
_COUNT_TOKENS_MODEL = "count-tokens"


def _match(method: str, path: str) -> re.Match[str] | None:
    return _PATH.match(path.split("?", 1)[0]) if method.upper() == "POST" else None


def _operation(m: re.Match[str]) -> str:
    if m["gaction"]:
        return ACTIONS[m["gaction"]]
    if m["amodel"] == _COUNT_TOKENS_MODEL:
        return Operation.COUNT_TOKENS
    return Operation.MESSAGES


class VertexAdapter(JsonAdapter):
    """Vertex AI publisher models: Google (Gemini format) and Anthropic (Messages format)."""

    api = "vertex"

    def operation(self, method: str, path: str) -> str | None:
        m = _match(method, path)
        return _operation(m) if m else None

    def parse(self, provider: str, request: Request) -> Exchange:
        m = _match(request.method, request.path)
        if m is None:
            raise ParseError(f"{request.method} {request.path.split('?')[0]}: not an endpoint")
        body = load_object(request.body)
        operation = _operation(m)
        exchange = Exchange(
            provider=provider,
            api=self.api,
            operation=operation,
            path=request.path,
            model=unquote(m["gmodel"] or m["amodel"]),
            body=body,
            raw_body=request.body,
        )
        if m["gaction"]:
            return parse_google(exchange, m["gaction"], body)
        parse_into(exchange, body, model_in_body=operation == Operation.COUNT_TOKENS)
        if m["aaction"] == "streamRawPredict":
            exchange.stream = True
        return exchange

    def write_model(self, exchange: Exchange, model: str) -> tuple[str, bool]:
        if exchange.operation == Operation.COUNT_TOKENS and "model" in exchange.body:
            return super().write_model(exchange, model)
        return replace_model(exchange.path, _MODEL, model), False

    def _is_anthropic(self, exchange: Exchange) -> bool:
        return "/publishers/anthropic/" in exchange.path

    def summarize(
        self, exchange: Exchange, body: bytes, headers: Mapping[str, str] | None = None
    ) -> ResponseSummary:
        if exchange.operation == Operation.COUNT_TOKENS:
            return ResponseSummary()
        if self._is_anthropic(exchange):
            return anthropic_format.summarize(try_load(body))
        return gemini_format.summarize(try_load(body))

    def stream_reader(self, exchange: Exchange, content_type: str) -> StreamReader:
        if self._is_anthropic(exchange):
            return MessagesStreamReader()
        return google_stream_reader(content_type)

    def error_reply(self, status: int, refusal: str, message: str) -> ErrorReply:
        return error_reply(status, refusal, message)
