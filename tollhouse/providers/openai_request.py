"""OpenAI request bodies (chat completions, Responses, completions, embeddings) → segments.

Each ``parse_*`` function reads one body into a :class:`Collected` and returns the maximum output
tokens the client allowed. Paths in segments are paths in the parsed body, ready for write-back.
"""

from __future__ import annotations

from typing import Any

from tollhouse.exchange import JsonPath, Role
from tollhouse.providers.jsonbody import (
    Collected,
    arr,
    data_url_type,
    dig,
    fail,
    obj,
    opt_int,
    opt_str,
)

CHAT_ROLES = {
    "system": Role.SYSTEM,
    "developer": Role.SYSTEM,
    "user": Role.USER,
    "assistant": Role.ASSISTANT,
    "tool": Role.TOOL_RESULT,
    "function": Role.TOOL_RESULT,
}


def _role(msg: dict[str, Any], path: JsonPath, default: str | None = None) -> str:
    name = msg.get("role", default)
    if not isinstance(name, str):
        raise fail((*path, "role"), "a string", name)
    return CHAT_ROLES.get(name, Role.USER)  # an unknown role is scanned as untrusted user text


def _content_part(c: Collected, role: str, part: Any, path: JsonPath) -> None:
    """One part of a chat or Responses message: text, refusal, image, audio or file."""
    part = obj(part, path)
    kind = part.get("type")
    if kind in ("text", "input_text", "output_text"):
        c.text(role, (*path, "text"), part.get("text"))
    elif kind == "refusal":
        c.text(role, (*path, "refusal"), part.get("refusal"))
    elif kind in ("image_url", "input_image"):
        url = part.get("image_url")
        c.attach("image", path, data_url_type(dig(url, "url") if isinstance(url, dict) else url))
    elif kind == "input_audio":
        fmt = dig(part, "input_audio", "format")
        c.attach("audio", path, f"audio/{fmt}" if isinstance(fmt, str) else None)
    elif kind in ("file", "input_file"):
        data = dig(part, "file", "file_data") if kind == "file" else part.get("file_data")
        c.attach("file", path, data_url_type(data))
    elif not isinstance(kind, str):
        raise fail((*path, "type"), "a string", kind)


def _content(c: Collected, role: str, msg: dict[str, Any], path: JsonPath, key: str) -> None:
    """A message's content: a string, a list of parts, or null."""
    content = msg.get(key)
    if isinstance(content, str):
        c.text(role, (*path, key), content)
    elif isinstance(content, list):
        for j, part in enumerate(content):
            _content_part(c, role, part, (*path, key, j))
    elif content is not None:
        raise fail((*path, key), "a string, an array or null", content)


def parse_chat(body: dict[str, Any], c: Collected) -> int | None:
    """``/chat/completions``: messages, tool calls, ``max_completion_tokens`` or ``max_tokens``."""
    messages = arr(body.get("messages"), ("messages",))
    for i, msg in enumerate(messages):
        path: JsonPath = ("messages", i)
        msg = obj(msg, path)
        role = _role(msg, path)
        _content(c, role, msg, path, "content")
        if role == Role.ASSISTANT:
            c.maybe_text(Role.ASSISTANT, msg, "refusal", path)
            calls = msg.get("tool_calls")
            if calls is not None:
                for j, call in enumerate(arr(calls, (*path, "tool_calls"))):
                    call_path = (*path, "tool_calls", j)
                    fn = obj(obj(call, call_path).get("function"), (*call_path, "function"))
                    c.maybe_text(Role.TOOL_CALL, fn, "arguments", (*call_path, "function"))
            legacy = msg.get("function_call")  # deprecated single function call
            if legacy is not None:
                fn = obj(legacy, (*path, "function_call"))
                c.maybe_text(Role.TOOL_CALL, fn, "arguments", (*path, "function_call"))
    limit = opt_int(body, "max_completion_tokens", ())
    return limit if limit is not None else opt_int(body, "max_tokens", ())


def parse_responses(body: dict[str, Any], c: Collected) -> int | None:
    """``/responses``: ``instructions``, ``input`` (a string or items), ``max_output_tokens``."""
    c.maybe_text(Role.SYSTEM, body, "instructions", ())
    variables = dig(body, "prompt", "variables")  # a stored prompt template's variables
    if isinstance(variables, dict):
        c.leaves(Role.USER, ("prompt", "variables"), variables)
    items = body.get("input")
    if isinstance(items, str):
        c.text(Role.USER, ("input",), items)
    elif isinstance(items, list):
        for i, item in enumerate(items):
            _responses_item(c, obj(item, ("input", i)), ("input", i))
    elif items is not None:
        raise fail(("input",), "a string or an array", items)
    return opt_int(body, "max_output_tokens", ())


def _responses_item(c: Collected, item: dict[str, Any], path: JsonPath) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        _content(c, _role(item, path), item, path, "content")
    elif not isinstance(kind, str):
        raise fail((*path, "type"), "a string", kind)
    elif kind in ("function_call", "mcp_call"):
        c.maybe_text(Role.TOOL_CALL, item, "arguments", path)
        c.maybe_text(Role.TOOL_RESULT, item, "output", path)
    elif kind == "custom_tool_call":
        c.maybe_text(Role.TOOL_CALL, item, "input", path)
    elif kind.endswith("_call_output"):  # function, custom tool, computer, shell outputs
        if not isinstance(item.get("output"), dict):  # a computer call's output is a screenshot
            _content(c, Role.TOOL_RESULT, item, path, "output")
    elif kind == "reasoning":
        summary = item.get("summary")
        if isinstance(summary, list):
            for j, part in enumerate(summary):
                if isinstance(part, dict) and "text" in part:
                    c.text(Role.ASSISTANT, (*path, "summary", j, "text"), part["text"])


def parse_prompt(body: dict[str, Any], key: str, c: Collected) -> None:
    """Completions ``prompt`` / embeddings ``input``: a string, strings, or token arrays."""
    value = body.get(key)
    if isinstance(value, str):
        c.text(Role.INPUT, (key,), value)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, str):
                c.text(Role.INPUT, (key, i), item)
            elif not isinstance(item, int | list) or isinstance(item, bool):
                raise fail((key, i), "a string or token ids", item)
    elif value is not None:
        raise fail((key,), "a string or an array", value)


def parse_completions(body: dict[str, Any], c: Collected) -> int | None:
    """Legacy ``/completions``: ``prompt`` and ``suffix``, ``max_tokens``."""
    parse_prompt(body, "prompt", c)
    if opt_str(body, "suffix", ()) is not None:
        c.text(Role.INPUT, ("suffix",), body["suffix"])
    return opt_int(body, "max_tokens", ())


def parse_embeddings(body: dict[str, Any], c: Collected) -> int | None:
    """``/embeddings``: ``input``. Embeddings produce no output tokens."""
    parse_prompt(body, "input", c)
    return None
