"""Cohere: ``/v2/chat`` (CHAT) and ``/v1/embed`` / ``/v2/embed`` (EMBEDDINGS).

The v1 chat API (``message``, ``chat_history``, newline-delimited JSON streams) is not parsed and
resolves as unknown; Cohere's ``/compatibility/v1/chat/completions`` goes to the OpenAI adapter.
Usage prefers ``usage.tokens`` (what the model processed) over ``billed_units`` when both exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tollhouse.exchange import Exchange, JsonPath, Operation, Role, Usage
from tollhouse.providers.base import ErrorReply, ParseError, Request, ResponseSummary, StreamReader
from tollhouse.providers.common import JsonAdapter, SseReader, json_error
from tollhouse.providers.jsonbody import (
    Collected,
    TextCollector,
    arr,
    as_int,
    data_url_type,
    dig,
    fail,
    load_object,
    obj,
    opt_bool,
    opt_int,
    opt_str,
    try_load,
)
from tollhouse.providers.sse import SseEvent

_PATHS = {
    "/v2/chat": Operation.CHAT,
    "/v2/embed": Operation.EMBEDDINGS,
    "/v1/embed": Operation.EMBEDDINGS,
}
_ROLES = {
    "system": Role.SYSTEM,
    "user": Role.USER,
    "assistant": Role.ASSISTANT,
    "tool": Role.TOOL_RESULT,
}


def _content(c: Collected, role: str, msg: dict[str, Any], path: JsonPath) -> None:
    content = msg.get("content")
    if isinstance(content, str):
        c.text(role, (*path, "content"), content)
        return
    if content is None:
        return
    for j, part in enumerate(arr(content, (*path, "content"))):
        part_path = (*path, "content", j)
        part = obj(part, part_path)
        kind = part.get("type")
        if kind == "text":
            c.text(role, (*part_path, "text"), part.get("text"))
        elif kind == "image_url":
            c.attach("image", part_path, data_url_type(dig(part, "image_url", "url")))
        elif kind == "document":  # a tool's result as a document: {"data": {...}} or a string
            document = obj(part.get("document"), (*part_path, "document"))
            if "data" in document:
                c.leaves(Role.TOOL_RESULT, (*part_path, "document", "data"), document["data"])
        elif not isinstance(kind, str):
            raise fail((*part_path, "type"), "a string", kind)


def parse_chat(body: dict[str, Any], c: Collected) -> int | None:
    """v2 chat: ``messages``, ``documents`` (retrieved text: untrusted), ``max_tokens``."""
    for i, msg in enumerate(arr(body.get("messages"), ("messages",))):
        path: JsonPath = ("messages", i)
        msg = obj(msg, path)
        name = msg.get("role")
        if not isinstance(name, str):
            raise fail((*path, "role"), "a string", name)
        role = _ROLES.get(name, Role.USER)
        _content(c, role, msg, path)
        if role == Role.ASSISTANT:
            c.maybe_text(Role.ASSISTANT, msg, "tool_plan", path)
            for j, call in enumerate(arr(msg.get("tool_calls") or [], (*path, "tool_calls"))):
                call_path = (*path, "tool_calls", j)
                fn = obj(obj(call, call_path).get("function"), (*call_path, "function"))
                c.maybe_text(Role.TOOL_CALL, fn, "arguments", (*call_path, "function"))
    documents = body.get("documents")
    if documents is not None:
        for i, document in enumerate(arr(documents, ("documents",))):
            if isinstance(document, str):
                c.text(Role.TOOL_RESULT, ("documents", i), document)
            elif "data" in obj(document, ("documents", i)):
                c.leaves(Role.TOOL_RESULT, ("documents", i, "data"), document["data"])
    return opt_int(body, "max_tokens", ())


def parse_embed(body: dict[str, Any], c: Collected) -> None:
    """``texts`` (strings) and v2 ``inputs`` (content parts) are embedded."""
    texts = body.get("texts")
    if texts is not None:
        for i, text in enumerate(arr(texts, ("texts",))):
            c.text(Role.INPUT, ("texts", i), text)
    inputs = body.get("inputs")
    if inputs is not None:
        for i, item in enumerate(arr(inputs, ("inputs",))):
            _content(c, Role.INPUT, obj(item, ("inputs", i)), ("inputs", i))
    images = body.get("images")
    if images is not None:
        for i, image in enumerate(arr(images, ("images",))):
            c.attach("image", ("images", i), data_url_type(image))


def usage(data: Any) -> Usage | None:
    """``{"tokens": {...}, "billed_units": {...}}``, tokens preferred."""
    if not isinstance(data, dict):
        return None
    counts = data.get("tokens")
    if not isinstance(counts, dict) or not counts:
        counts = data.get("billed_units")
    if not isinstance(counts, dict):
        return None
    return Usage(as_int(counts.get("input_tokens")), as_int(counts.get("output_tokens")))


class ChatStreamReader(SseReader):
    """v2 chat stream: ``content-delta`` text, ``message-end`` usage."""

    def on_event(self, event: SseEvent) -> bool:
        if event.event is not None and event.event not in ("content-delta", "message-end"):
            return False
        data = try_load(event.data)
        if not isinstance(data, dict):
            return False
        if data.get("type") == "content-delta":
            self.text.add(dig(data, "delta", "message", "content", "text"))
        elif data.get("type") == "message-end":
            found = usage(dig(data, "delta", "usage"))
            if found is not None:
                self.summary.usage = found
            self.finished = self.summary.usage is not None
        return False


class CohereAdapter(JsonAdapter):
    """The Cohere v2 API."""

    api = "cohere"

    def operation(self, method: str, path: str) -> str | None:
        if method.upper() != "POST":
            return None
        return _PATHS.get(path.split("?", 1)[0].rstrip("/"))

    def parse(self, provider: str, request: Request) -> Exchange:
        operation = self.operation(request.method, request.path)
        if operation is None:
            raise ParseError(f"{request.method} {request.path.split('?')[0]}: not an endpoint")
        body = load_object(request.body)
        c = Collected()
        limit = None
        if operation == Operation.CHAT:
            limit = parse_chat(body, c)
        else:
            parse_embed(body, c)
        return Exchange(
            provider=provider,
            api=self.api,
            operation=operation,
            path=request.path,
            model=opt_str(body, "model", ()),
            stream=operation == Operation.CHAT and opt_bool(body, "stream", ()),
            max_output_tokens=limit,
            segments=c.segments,
            attachments=c.attachments,
            body=body,
            raw_body=request.body,
        )

    def summarize(
        self, exchange: Exchange, body: bytes, headers: Mapping[str, str] | None = None
    ) -> ResponseSummary:
        data = try_load(body)
        if not isinstance(data, dict):
            return ResponseSummary()
        if exchange.operation == Operation.EMBEDDINGS:
            return ResponseSummary(usage(data.get("meta")))
        text = TextCollector()
        for part in dig(data, "message", "content") or ():
            text.add(dig(part, "text"))
        return ResponseSummary(usage(data.get("usage")), None, text.value)

    def stream_reader(self, exchange: Exchange, content_type: str) -> StreamReader:
        return ChatStreamReader()

    def error_reply(self, status: int, refusal: str, message: str) -> ErrorReply:
        return json_error(status, {"message": message})
