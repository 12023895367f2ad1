"""Amazon Bedrock runtime: Converse, ConverseStream, InvokeModel, InvokeModelWithResponseStream.

``/model/{modelId}/{action}``, the model id URL-encoded (a foundation model, an inference profile
or an ARN). InvokeModel bodies are the model's native format: Anthropic's Messages body for
``anthropic.*`` models (or any body with ``anthropic_version``), see bedrock_format for the others.

Requests signed with SigV4 are read but never rewritten: the signature covers path and body, so
:meth:`BedrockAdapter.render` raises SignedBodyError for a signed exchange that changed.

Streams are AWS event streams. ConverseStream's ``metadata`` event carries usage; InvokeModel's
``chunk`` events wrap the native stream events in base64, the last with invocation metrics.
InvokeModel usage also travels in ``x-amzn-bedrock-*-token-count`` response headers, which is why
``summarize`` takes headers.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re
from collections.abc import Mapping
from urllib.parse import quote, unquote

from tollhouse.exchange import Exchange, Operation, Usage
from tollhouse.providers import anthropic_format, bedrock_format
from tollhouse.providers.anthropic import parse_into
from tollhouse.providers.base import (
    ErrorReply,
    ParseError,
    Refusal,
    Request,
    ResponseSummary,
    StreamReader,
)
from tollhouse.providers.common import JsonAdapter, json_error
from tollhouse.providers.eventstream import EventMessage, EventStreamDecoder, EventStreamError
from tollhouse.providers.jsonbody import Collected, TextCollector, load_object, try_load

_PATH = re.compile(
    r"^/model/(?P<model>[^/]+)/(?P<action>converse|converse-stream|invoke|invoke-with-response-stream)/?$"
)
_STREAMING = {"converse-stream", "invoke-with-response-stream"}

# ServiceQuotaExceededException, not ThrottlingException: botocore retries throttling errors and
# ignores x-should-retry, and a budget cap does not lift on a retry.
_ERROR_TYPES = {
    Refusal.INVALID_REQUEST: "ValidationException",
    Refusal.AUTHENTICATION: "UnrecognizedClientException",
    Refusal.PERMISSION: "AccessDeniedException",
    Refusal.NOT_FOUND: "ResourceNotFoundException",
    Refusal.RATE_LIMIT: "ServiceQuotaExceededException",
    Refusal.GATEWAY: "InternalServerException",
}


def is_signed(request: Request) -> bool:
    """True when a SigV4 signature covers the request (header or presigned query)."""
    if request.headers.get("authorization", "").startswith("AWS4-HMAC-SHA256"):
        return True
    sha = request.headers.get("x-amz-content-sha256")
    if sha is not None and sha != "UNSIGNED-PAYLOAD":
        return True
    return "X-Amz-Signature=" in request.path


def _is_anthropic(model: str | None, body: object) -> bool:
    return (isinstance(body, dict) and "anthropic_version" in body) or (
        model is not None and "anthropic." in model
    )


class BedrockAdapter(JsonAdapter):
    """The Bedrock runtime API."""

    api = "bedrock"

    def operation(self, method: str, path: str) -> str | None:
        if method.upper() != "POST":
            return None
        m = _PATH.match(path.split("?", 1)[0])
        if m is None:
            return None
        return Operation.CONVERSE if m["action"].startswith("converse") else Operation.INVOKE

    def parse(self, provider: str, request: Request) -> Exchange:
        m = _PATH.match(request.path.split("?", 1)[0])
        if m is None or request.method.upper() != "POST":
            raise ParseError(f"{request.method} {request.path.split('?')[0]}: not an endpoint")
        body = load_object(request.body)
        model = unquote(m["model"])
        converse = m["action"].startswith("converse")
        exchange = Exchange(
            provider=provider,
            api=self.api,
            operation=Operation.CONVERSE if converse else Operation.INVOKE,
            path=request.path,
            model=model,
            stream=m["action"] in _STREAMING,
            body=body,
            raw_body=request.body,
            signed=is_signed(request),
        )
        if not converse and _is_anthropic(model, body):
            parse_into(exchange, body, model_in_body=False)
            exchange.stream = m["action"] in _STREAMING  # the path decides, not the body
            return exchange
        c = Collected()
        if converse:
            exchange.max_output_tokens = bedrock_format.parse_converse(body, c)
        else:
            exchange.max_output_tokens = bedrock_format.parse_native(body, c)
        exchange.segments = c.segments
        exchange.attachments = c.attachments
        return exchange

    def write_model(self, exchange: Exchange, model: str) -> tuple[str, bool]:
        bare, sep, query = exchange.path.partition("?")
        m = _PATH.match(bare)
        if m is None:
            raise ParseError(f"{bare}: the model is not in the path")
        start, end = m.span("model")
        return bare[:start] + quote(model, safe=":") + bare[end:] + sep + query, False

    def summarize(
        self, exchange: Exchange, body: bytes, headers: Mapping[str, str] | None = None
    ) -> ResponseSummary:
        data = try_load(body)
        if exchange.operation == Operation.CONVERSE:
            text = TextCollector()
            for block in _dig_list(data, "output", "message", "content"):
                text.add(block.get("text") if isinstance(block, dict) else None)
            usage = bedrock_format.usage(data.get("usage")) if isinstance(data, dict) else None
            return ResponseSummary(usage, None, text.value)
        if _is_anthropic(exchange.model, exchange.body):
            summary = anthropic_format.summarize(data)
        else:
            text = TextCollector()
            bedrock_format.native_text(data, text)
            summary = ResponseSummary(bedrock_format.native_usage(data), None, text.value)
        if summary.usage is None:
            summary.usage = _header_usage(headers)
        return summary

    def stream_reader(self, exchange: Exchange, content_type: str) -> StreamReader:
        if exchange.operation == Operation.CONVERSE:
            return ConverseStreamReader()
        return InvokeStreamReader(anthropic=_is_anthropic(exchange.model, exchange.body))

    def error_reply(self, status: int, refusal: str, message: str) -> ErrorReply:
        kind = _ERROR_TYPES.get(refusal, "ValidationException")
        return json_error(status, {"message": message}, {"x-amzn-ErrorType": kind})


def _dig_list(data: object, *keys: str) -> list[object]:
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, list) else []


def _header_usage(headers: Mapping[str, str] | None) -> Usage | None:
    if not headers:
        return None
    inp = headers.get("x-amzn-bedrock-input-token-count")
    out = headers.get("x-amzn-bedrock-output-token-count")
    if inp is None and out is None:
        return None
    try:
        return Usage(int(inp or 0), int(out or 0))
    except ValueError:
        return None


class _EventStreamReader(StreamReader):
    """Forwards every chunk at once and decodes frames on the side; bad framing stops decoding."""

    def __init__(self) -> None:
        super().__init__()
        self._decoder: EventStreamDecoder | None = EventStreamDecoder()
        self.text = TextCollector()

    def on_message(self, message: EventMessage) -> None:
        raise NotImplementedError

    def feed(self, chunk: bytes) -> bytes:
        if self._decoder is not None:
            try:
                for message in self._decoder.feed(chunk):
                    if message.message_type == "event":
                        self.on_message(message)
            except EventStreamError:
                self._decoder = None  # the client will see the same bytes and fail on them
        return chunk

    def close(self) -> bytes:
        if self._decoder is not None:
            with contextlib.suppress(EventStreamError):  # a cut-off stream: keep what was read
                self._decoder.close()
        self.summary.text = self.text.value
        return b""


class ConverseStreamReader(_EventStreamReader):
    """ConverseStream: ``contentBlockDelta`` text, ``metadata`` usage (after ``messageStop``)."""

    def __init__(self) -> None:
        super().__init__()
        self._stopped = False

    def on_message(self, message: EventMessage) -> None:
        kind = message.event_type
        if kind == "messageStop":
            self._stopped = True
        if kind not in ("contentBlockDelta", "metadata"):
            return
        data = try_load(message.payload)
        if not isinstance(data, dict):
            return
        if kind == "contentBlockDelta":
            delta = data.get("delta")
            self.text.add(delta.get("text") if isinstance(delta, dict) else None)
        else:
            usage = bedrock_format.usage(data.get("usage"))
            if usage is not None:
                self.summary.usage = usage
            self.finished = self._stopped and self.summary.usage is not None


class InvokeStreamReader(_EventStreamReader):
    """InvokeModelWithResponseStream: ``chunk`` events holding base64 native stream events."""

    def __init__(self, anthropic: bool) -> None:
        super().__init__()
        self._anthropic = (
            anthropic_format.MessagesEvents(self.summary, self.text) if anthropic else None
        )

    def on_message(self, message: EventMessage) -> None:
        if message.event_type != "chunk":
            return
        wrapper = try_load(message.payload)
        encoded = wrapper.get("bytes") if isinstance(wrapper, dict) else None
        if not isinstance(encoded, str):
            return
        try:
            data = try_load(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            return
        if not isinstance(data, dict):
            return
        if self._anthropic is not None:
            self._anthropic.handle(data)
        else:
            bedrock_format.native_text(data, self.text)
        metrics = bedrock_format.invocation_metrics(data.get("amazon-bedrock-invocationMetrics"))
        # Anthropic's own events carry the cache breakdown: Bedrock's totals only fill a gap.
        if metrics is not None and (self.summary.usage is None or self._anthropic is None):
            self.summary.usage = metrics
        # Bedrock adds its metrics to the last chunk only; Anthropic's stop event is that chunk.
        if self._anthropic is not None:
            self.finished = self._anthropic.finished
        elif metrics is not None:
            self.finished = True
