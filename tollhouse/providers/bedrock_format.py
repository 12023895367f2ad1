"""Bedrock body formats: Converse, and the model-native InvokeModel bodies that are not Anthropic's.

Converse reports ``inputTokens`` without the cached ones (like Anthropic), so :func:`usage` adds
cache reads and writes in. Native bodies differ per model family: those we know are parsed
(Nova's messages-v1, OpenAI-style ``messages``, Titan ``inputText``, Llama/Mistral ``prompt``,
Cohere ``message``/``texts``); an unknown one yields every string under its prompt-like keys.
"""

from __future__ import annotations

from typing import Any

from tollhouse.exchange import JsonPath, Role, Usage
from tollhouse.providers.jsonbody import (
    Collected,
    TextCollector,
    arr,
    as_int,
    dig,
    fail,
    obj,
    opt_int,
    usage_with_cache,
)
from tollhouse.providers.openai_request import parse_chat

_DOC_TYPES = {
    "pdf": "application/pdf",
    "txt": "text/plain",
    "md": "text/markdown",
    "html": "text/html",
    "csv": "text/csv",
}
_ROLES = {"user": Role.USER, "assistant": Role.ASSISTANT}


def parse_converse(body: dict[str, Any], c: Collected, limit_key: str = "maxTokens") -> int | None:
    """Converse (and Nova's native messages-v1): ``system``, ``messages``, ``inferenceConfig``."""
    system = body.get("system")
    if system is not None:
        for i, block in enumerate(arr(system, ("system",))):
            _block(c, Role.SYSTEM, obj(block, ("system", i)), ("system", i))
    for i, msg in enumerate(arr(body.get("messages"), ("messages",))):
        path: JsonPath = ("messages", i)
        msg = obj(msg, path)
        name = msg.get("role")
        role = _ROLES.get(name, Role.USER) if isinstance(name, str) else Role.USER
        for j, block in enumerate(arr(msg.get("content"), (*path, "content"))):
            block_path = (*path, "content", j)
            _block(c, role, obj(block, block_path), block_path)
    variables = body.get("promptVariables")  # Bedrock prompt management: {name: {"text": ...}}
    if isinstance(variables, dict):
        c.leaves(Role.USER, ("promptVariables",), variables)
    config = body.get("inferenceConfig")
    if config is None:
        return None
    return opt_int(obj(config, ("inferenceConfig",)), limit_key, ("inferenceConfig",))


def _block(c: Collected, role: str, block: dict[str, Any], path: JsonPath) -> None:
    if "text" in block:
        c.text(role, (*path, "text"), block["text"])
    elif "image" in block:
        fmt = dig(block, "image", "format")
        c.attach("image", path, f"image/{fmt}" if isinstance(fmt, str) else None)
    elif "video" in block:
        fmt = dig(block, "video", "format")
        c.attach("video", path, f"video/{fmt}" if isinstance(fmt, str) else None)
    elif "document" in block:
        # A document is retrieved or uploaded content: untrusted, scored like a tool result.
        doc = obj(block["document"], (*path, "document"))
        _document(c, Role.TOOL_RESULT, doc, (*path, "document"))
    elif "toolUse" in block:
        tool = obj(block["toolUse"], (*path, "toolUse"))
        if "input" in tool:
            c.leaves(Role.TOOL_CALL, (*path, "toolUse", "input"), tool["input"])
    elif "toolResult" in block:
        result = obj(block["toolResult"], (*path, "toolResult"))
        content = result.get("content")
        for k, inner in enumerate(arr(content, (*path, "toolResult", "content"))):
            inner_path = (*path, "toolResult", "content", k)
            inner = obj(inner, inner_path)
            if "json" in inner:
                c.leaves(Role.TOOL_RESULT, (*inner_path, "json"), inner["json"])
            else:
                _block(c, Role.TOOL_RESULT, inner, inner_path)
    elif "reasoningContent" in block:
        reasoning = dig(block, "reasoningContent", "reasoningText")
        if isinstance(reasoning, dict) and "text" in reasoning:
            where = (*path, "reasoningContent", "reasoningText", "text")
            c.text(Role.ASSISTANT, where, reasoning["text"])
    elif "guardContent" in block:
        text = dig(block, "guardContent", "text")
        if isinstance(text, dict) and "text" in text:
            c.text(role, (*path, "guardContent", "text", "text"), text["text"])


def _document(c: Collected, role: str, doc: dict[str, Any], path: JsonPath) -> None:
    source = obj(doc.get("source"), (*path, "source"))
    if "text" in source:  # a plain-text document: the model reads it as text
        c.text(role, (*path, "source", "text"), source["text"])
    elif "content" in source:
        for k, inner in enumerate(arr(source["content"], (*path, "source", "content"))):
            inner = obj(inner, (*path, "source", "content", k))
            c.maybe_text(role, inner, "text", (*path, "source", "content", k))
    else:
        fmt = doc.get("format")
        c.attach("document", path[:-1], _DOC_TYPES.get(fmt) if isinstance(fmt, str) else None)


def usage(data: Any) -> Usage | None:
    """Converse ``usage``: cache reads and writes added into ``input_tokens``."""
    if not isinstance(data, dict):
        return None
    return usage_with_cache(
        data.get("inputTokens"),
        data.get("outputTokens"),
        data.get("cacheReadInputTokens", data.get("cacheReadInputTokenCount")),
        data.get("cacheWriteInputTokens", data.get("cacheWriteInputTokenCount")),
    )


def invocation_metrics(data: Any) -> Usage | None:
    """``amazon-bedrock-invocationMetrics`` at the end of an InvokeModel stream."""
    if not isinstance(data, dict):
        return None
    return usage_with_cache(
        data.get("inputTokenCount"),
        data.get("outputTokenCount"),
        data.get("cacheReadInputTokenCount"),
        data.get("cacheWriteInputTokenCount"),
    )


# Prompt-like keys of native bodies (Titan, Llama, Mistral, DeepSeek, Cohere, AI21, Jamba...).
_PROMPT_KEYS = ("inputText", "prompt", "message", "texts", "text")
_LIMIT_KEYS = ("max_tokens", "max_gen_len", "maxTokens", "max_new_tokens", "max_tokens_to_sample")


def parse_native(body: dict[str, Any], c: Collected) -> int | None:
    """A non-Anthropic InvokeModel body, as well as we know its family."""
    messages = body.get("messages")
    if isinstance(messages, list):
        if any(_converse_style(m) for m in messages):
            return parse_converse(body, c, "max_new_tokens")  # Amazon Nova messages-v1
        return parse_chat(body, c)  # OpenAI-style: gpt-oss, Mistral, DeepSeek, Llama 4
    if isinstance(body.get("preamble"), str):  # Cohere Command R
        c.text(Role.SYSTEM, ("preamble",), body["preamble"])
    history = body.get("chat_history")
    if isinstance(history, list):
        for i, turn in enumerate(history):
            if isinstance(turn, dict) and isinstance(turn.get("message"), str):
                role = Role.ASSISTANT if turn.get("role") == "CHATBOT" else Role.USER
                c.text(role, ("chat_history", i, "message"), turn["message"])
    for key in _PROMPT_KEYS:
        if key in body:
            c.leaves(Role.INPUT, (key,), body[key])
    for key in _LIMIT_KEYS:
        if key in body:
            return opt_int(body, key, ())
    limit = dig(body, "textGenerationConfig", "maxTokenCount")  # Titan text
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
        raise fail(("textGenerationConfig", "maxTokenCount"), "an integer", limit)
    return limit


def _converse_style(message: Any) -> bool:
    content = dig(message, "content")
    return isinstance(content, list) and any(
        isinstance(block, dict) and "type" not in block for block in content
    )


def native_usage(data: Any) -> Usage | None:
    """Usage in a native response body, where the family reports one."""
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("usage"), dict):
        u = data["usage"]
        if "inputTokens" in u:  # Nova
            return usage(u)
        if "prompt_tokens" in u:  # OpenAI-style
            return Usage(as_int(u.get("prompt_tokens")), as_int(u.get("completion_tokens")))
    if "prompt_token_count" in data:  # Llama
        return Usage(as_int(data["prompt_token_count"]), as_int(data.get("generation_token_count")))
    if "inputTextTokenCount" in data:  # Titan
        results = data.get("results") or ()
        out = sum(as_int(dig(r, "tokenCount")) for r in results)
        return Usage(as_int(data["inputTextTokenCount"]), out)
    return None


def native_text(data: Any, text: TextCollector) -> None:
    """Output text of a native response or stream chunk, for the families we know."""
    if not isinstance(data, dict):
        return
    text.add(data.get("generation"))  # Llama
    text.add(data.get("outputText"))  # Titan stream
    text.add(data.get("completion"))
    text.add(dig(data, "contentBlockDelta", "delta", "text"))  # Nova stream
    for key in ("results", "outputs", "generations"):  # Titan, Mistral, Cohere
        for item in data.get(key) or ():
            text.add(dig(item, "outputText") or dig(item, "text"))
    for block in dig(data, "output", "message", "content") or ():  # Nova
        text.add(dig(block, "text"))
    for choice in data.get("choices") or ():  # OpenAI-style
        text.add(dig(choice, "message", "content") or dig(choice, "delta", "content"))
