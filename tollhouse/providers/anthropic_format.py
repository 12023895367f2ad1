"""The Anthropic Messages format, shared by the Anthropic API, Vertex AI and Bedrock InvokeModel.

Request bodies → segments, usage → :class:`Usage`, and stream events → a summary. Anthropic reports
cache reads and writes apart from ``input_tokens``; :func:`usage` adds them in.
"""

from __future__ import annotations

from typing import Any

from tollhouse.exchange import JsonPath, Role, Usage
from tollhouse.providers.base import ResponseSummary
from tollhouse.providers.jsonbody import (
    Collected,
    TextCollector,
    arr,
    dig,
    fail,
    obj,
    opt_int,
    usage_with_cache,
)

_ROLES = {"user": Role.USER, "assistant": Role.ASSISTANT}


def parse_messages(body: dict[str, Any], c: Collected) -> int | None:
    """``system``, ``messages`` and ``max_tokens`` of a Messages (or count_tokens) body."""
    system = body.get("system")
    if isinstance(system, str):
        c.text(Role.SYSTEM, ("system",), system)
    elif isinstance(system, list):
        for i, block in enumerate(system):
            _block(c, Role.SYSTEM, block, ("system", i))
    elif system is not None:
        raise fail(("system",), "a string or an array", system)
    for i, msg in enumerate(arr(body.get("messages"), ("messages",))):
        path: JsonPath = ("messages", i)
        msg = obj(msg, path)
        name = msg.get("role")
        if not isinstance(name, str):
            raise fail((*path, "role"), "a string", name)
        role = _ROLES.get(name, Role.USER)
        content = msg.get("content")
        if isinstance(content, str):
            c.text(role, (*path, "content"), content)
        elif isinstance(content, list):
            for j, block in enumerate(content):
                _block(c, role, block, (*path, "content", j))
        else:
            raise fail((*path, "content"), "a string or an array", content)
    return opt_int(body, "max_tokens", ())


def _block(c: Collected, role: str, block: Any, path: JsonPath) -> None:
    """One content block. Tool inputs are objects: every string inside is a segment."""
    block = obj(block, path)
    kind = block.get("type")
    if kind == "text":
        c.text(role, (*path, "text"), block.get("text"))
    elif kind == "image":
        c.attach("image", path, dig(block, "source", "media_type"))
    elif kind == "document":  # retrieved or uploaded content: untrusted, like a tool result
        _document(c, Role.TOOL_RESULT, block, path)
    elif kind in ("tool_use", "server_tool_use"):
        if "input" in block:
            c.leaves(Role.TOOL_CALL, (*path, "input"), block["input"])
    elif kind in ("tool_result", "search_result"):  # search results: retrieved, untrusted text
        _tool_content(c, block.get("content"), (*path, "content"))
    elif kind == "thinking":
        c.text(Role.ASSISTANT, (*path, "thinking"), block.get("thinking"))
    elif kind == "container_upload":
        c.attach("file", path)
    elif not isinstance(kind, str):
        raise fail((*path, "type"), "a string", kind)


def _document(c: Collected, role: str, block: dict[str, Any], path: JsonPath) -> None:
    source = obj(block.get("source"), (*path, "source"))
    kind = source.get("type")
    if kind == "text":  # plain text the model reads: scan it like a message
        c.text(role, (*path, "source", "data"), source.get("data"))
    elif kind == "content":
        content = source.get("content")
        if isinstance(content, str):
            c.text(role, (*path, "source", "content"), content)
        else:
            for j, inner in enumerate(arr(content, (*path, "source", "content"))):
                _block(c, role, inner, (*path, "source", "content", j))
    else:
        c.attach("document", path, source.get("media_type") or "application/pdf")


def _tool_content(c: Collected, content: Any, path: JsonPath) -> None:
    if isinstance(content, str):
        c.text(Role.TOOL_RESULT, path, content)
    elif isinstance(content, list):
        for j, inner in enumerate(content):
            _block(c, Role.TOOL_RESULT, inner, (*path, j))
    elif content is not None:
        raise fail(path, "a string or an array", content)


def usage(data: Any) -> Usage | None:
    """Anthropic usage, with cache reads and writes added into ``input_tokens``."""
    if not isinstance(data, dict):
        return None
    return usage_with_cache(
        data.get("input_tokens"),
        data.get("output_tokens"),
        data.get("cache_read_input_tokens"),
        data.get("cache_creation_input_tokens"),
    )


def summarize(data: Any) -> ResponseSummary:
    """A complete Messages response."""
    if not isinstance(data, dict):
        return ResponseSummary()
    model = data.get("model")
    text = TextCollector()
    for block in data.get("content") or ():
        if isinstance(block, dict) and block.get("type") == "text":
            text.add(block.get("text"))
    return ResponseSummary(
        usage(data.get("usage")), model if isinstance(model, str) else None, text.value
    )


_COUNTS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)


class MessagesEvents:
    """Folds Messages stream events into a summary.

    ``message_start`` carries the model and the input usage; ``message_delta`` carries usage that
    is cumulative, so its counts replace earlier ones rather than add to them.
    """

    def __init__(self, summary: ResponseSummary, text: TextCollector) -> None:
        self.summary = summary
        self.text = text
        self._counts: dict[str, Any] = {}
        self.stopped = False  # message_stop was read

    @property
    def finished(self) -> bool:
        """The stop event and the final usage (``message_delta``, before it) were read."""
        return self.stopped and self.summary.usage is not None

    def handle(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "content_block_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                self.text.add(delta.get("text"))
        elif kind == "message_start":
            message = data.get("message")
            if isinstance(message, dict):
                if isinstance(message.get("model"), str):
                    self.summary.model = message["model"]
                self._update(message.get("usage"))
        elif kind == "message_delta":
            self._update(data.get("usage"))
        elif kind == "message_stop":
            self.stopped = True

    def _update(self, data: Any) -> None:
        if isinstance(data, dict):
            for key in _COUNTS:
                if isinstance(data.get(key), int):
                    self._counts[key] = data[key]
            self.summary.usage = usage(self._counts)
