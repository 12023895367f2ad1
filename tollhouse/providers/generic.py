"""The generic path: any request on an AI host that no adapter knows, read in full.

Deny by default means an endpoint the gateway has no adapter for (OpenAI files, batches and
assistants, Anthropic batches, Gemini cachedContents, Vertex ``:predict``...) is still read before
it is sent: JSON, JSON Lines, form-urlencoded and multipart bodies and text are parsed, and every
string and key becomes a segment (:mod:`tollhouse.providers.walk`) that DLP and injection scan and
rewrite like a prompt. What cannot be read as text (binary uploads, audio, images, a body that is
not UTF-8) is listed in :attr:`Exchange.unreadable`, and the host's ``unscannable`` policy in
``rules/hosts.yaml`` decides whether it may pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from tollhouse.exchange import Exchange, JsonPath, Operation, Role
from tollhouse.providers import multipart
from tollhouse.providers.base import (
    Adapter,
    ErrorReply,
    ParseError,
    Rendered,
    Request,
    ResponseSummary,
    SignedBodyError,
    StreamReader,
)
from tollhouse.providers.jsonbody import dump, strict_loads
from tollhouse.providers.walk import (
    BODY_FORMS,
    TokenDecoder,
    every_string,
    looks_like_text,
    write_back,
)


@dataclass
class GenericBody:
    """A body as the generic path read it. ``value`` is what segment paths point into: the JSON
    value; the list of JSON Lines values; ``[[name, value], ...]`` for a form; ``[text]``; or,
    for multipart, one ``{"name", "filename", "type", "content"}`` object per part."""

    kind: str  # "empty", "json", "jsonl", "form", "text", "multipart" or "opaque"
    value: Any = None
    boundary: str = ""
    part_kinds: list[str] = field(default_factory=list)
    trailing_newline: bool = False


class PassStream(StreamReader):
    """A streamed answer from an endpoint the gateway does not know: relayed as it is."""

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def close(self) -> bytes:
        return b""


class GenericAdapter(Adapter):
    """Reads any body of an API family whose endpoint its own adapter does not know. Error
    replies use the family's shape, so the family's SDK still raises a clear error."""

    def __init__(self, family: Adapter, decode_tokens: TokenDecoder | None = None) -> None:
        self.family = family
        self.api = family.api
        self.decode_tokens = decode_tokens

    def operation(self, method: str, path: str) -> str | None:
        return Operation.UNKNOWN

    def parse(self, provider: str, request: Request) -> Exchange:
        body = read_body(request.body, request.headers.get("content-type", ""))
        exchange = Exchange(
            provider=provider,
            api=self.api,
            operation=Operation.UNKNOWN,
            path=request.path,
            body=body,
            raw_body=request.body,
        )
        if body.kind == "opaque":
            exchange.unreadable.append(f"a body of type {_media(request.headers)}")
        elif body.kind == "multipart":
            for i, kind in enumerate(body.part_kinds):
                if kind == "opaque":
                    part = body.value[i]
                    media = _safe_media(part["type"]) or "unknown type"
                    exchange.unreadable.append(f"multipart part {i + 1} ({media})")
                    part["content"] = None  # binary: not a string to scan
        if body.kind not in ("empty", "opaque"):
            blobs: list[JsonPath] = []
            exchange.segments = every_string(body.value, Role.FIELD, (), self.decode_tokens, blobs)
            if blobs:  # images or audio as base64 inside JSON: binary, like an upload
                exchange.unreadable.append(f"{len(blobs)} binary base64 value(s)")
        if isinstance(body.value, dict):
            model = body.value.get("model")
            exchange.model = exchange.model_requested = model if isinstance(model, str) else None
        return exchange

    def render(self, exchange: Exchange) -> Rendered:
        body: GenericBody = exchange.body
        changed = [exchange.segments[i] for i in sorted(exchange.changed_segments)]
        changed = [s for s in changed if s.form in BODY_FORMS]
        if exchange.model_changed and isinstance(body.value, dict):
            body.value["model"] = exchange.model
        elif not changed:
            return Rendered(exchange.path, exchange.raw_body)
        if exchange.signed:
            raise SignedBodyError("the request is signed; its body cannot be rewritten")
        write_back(body.value, changed)
        return Rendered(exchange.path, serialize(body, exchange.raw_body))

    def summarize(
        self, exchange: Exchange, body: bytes, headers: Mapping[str, str] | None = None
    ) -> ResponseSummary:
        return ResponseSummary()

    def stream_reader(self, exchange: Exchange, content_type: str) -> StreamReader:
        return PassStream()

    def error_reply(self, status: int, refusal: str, message: str) -> ErrorReply:
        return self.family.error_reply(status, refusal, message)


def read_body(data: bytes, content_type: str) -> GenericBody:
    """Parse a body by what it is, not only by what its Content-Type claims: any UTF-8 text is
    read (a client may label a text file ``application/octet-stream``); bytes that are not text
    are ``opaque``. Raises :class:`ParseError` for an ambiguous body (duplicate JSON keys, a
    malformed multipart or form body)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if not data:
        return GenericBody("empty")
    if media == "multipart/form-data":
        return _multipart(data, multipart.boundary_of(content_type))
    if media == "application/x-www-form-urlencoded":
        return GenericBody("form", _form(data))
    kind, value, trailing = read_text(data)
    return GenericBody(kind, value, trailing_newline=trailing)


def read_text(data: bytes) -> tuple[str, Any, bool]:
    """``(kind, value, trailing newline)`` for bytes that may be JSON, JSON Lines or text."""
    text = _as_text(data)
    if text is None:
        return "opaque", None, False
    stripped = text.strip()
    if stripped[:1] in ("{", "[", '"'):
        try:
            return "json", strict_loads(text), False
        except ParseError as exc:
            if "duplicate" in str(exc):
                raise
    lines = text.splitlines()
    if len(lines) > 1 and all(line.lstrip()[:1] in ("{", "[") for line in lines if line.strip()):
        values = []
        for n, line in enumerate(lines):
            if line.strip():
                try:
                    values.append(strict_loads(line))
                except ParseError as exc:
                    raise ParseError(f"line {n + 1}: {exc}") from None
        return "jsonl", values, text.endswith("\n")
    return "text", [text], False


def serialize(body: GenericBody, raw: bytes) -> bytes:
    """The body written back in its own kind."""
    if body.kind == "json":
        return dump(body.value)
    if body.kind == "jsonl":
        out = b"\n".join(dump(v) for v in body.value)
        return out + (b"\n" if body.trailing_newline else b"")
    if body.kind == "form":
        return urlencode([tuple(pair) for pair in body.value]).encode()
    if body.kind == "text":
        return str(body.value[0]).encode()
    if body.kind == "multipart":
        old = multipart.parse(raw, body.boundary)
        for part, new, kind in zip(old, body.value, body.part_kinds, strict=True):
            part.name, part.filename, part.media_type = new["name"], new["filename"], new["type"]
            if kind != "opaque":
                part.content = serialize(_part_body(kind, new["content"]), b"")
        return multipart.render(old, body.boundary)
    return raw


def _part_body(kind: str, content: Any) -> GenericBody:
    return GenericBody(kind, content, trailing_newline=kind == "jsonl")


def _multipart(data: bytes, boundary: str) -> GenericBody:
    parts = multipart.parse(data, boundary)
    value, kinds = [], []
    for part in parts:
        kind, content, _ = read_text(part.content) if part.content else ("text", [""], False)
        kinds.append(kind)
        value.append(
            {
                "name": part.name,
                "filename": part.filename,
                "type": part.media_type,
                "content": content,
            }
        )
    return GenericBody("multipart", value, boundary=boundary, part_kinds=kinds)


def _form(data: bytes) -> list[list[str]]:
    try:
        pairs = parse_qsl(data.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise ParseError("$: form body is not valid UTF-8 form data") from None
    return [[k, v] for k, v in pairs]


def _as_text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if looks_like_text(text) else None


def _media(headers: Mapping[str, str]) -> str:
    return _safe_media(headers.get("content-type")) or "unknown type"


def _safe_media(value: str | None) -> str | None:
    """A media type fit to quote in a message: a plain ``type/subtype`` or nothing, since the
    header is client text."""
    media = (value or "").split(";", 1)[0].strip().lower()
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789.+-/")
    ok = media.count("/") == 1 and len(media) <= 80 and set(media) <= allowed
    return media if ok else None
