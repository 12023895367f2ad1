"""The Gemini ``generateContent`` format, shared by the Gemini API and Vertex AI.

Google's JSON mapping accepts both lowerCamelCase and the proto's snake_case field names (its own
curl examples use ``system_instruction`` and ``inline_data``), so every key is looked up both ways.
"""

from __future__ import annotations

from typing import Any

from tollhouse.exchange import JsonPath, Role, Usage
from tollhouse.providers.base import ResponseSummary
from tollhouse.providers.jsonbody import (
    Collected,
    TextCollector,
    arr,
    as_int,
    dig,
    first_key,
    obj,
    opt_int,
)


def parse_generate(body: dict[str, Any], c: Collected, base: JsonPath = ()) -> int | None:
    """``systemInstruction``, ``contents`` and ``generationConfig.maxOutputTokens``."""
    key = first_key(body, "systemInstruction", "system_instruction")
    if key is not None:
        _content(c, Role.SYSTEM, body[key], (*base, key))
    for i, content in enumerate(arr(body.get("contents"), (*base, "contents"))):
        path: JsonPath = (*base, "contents", i)
        content = obj(content, path)
        role = Role.ASSISTANT if content.get("role") == "model" else Role.USER
        _content(c, role, content, path)
    key = first_key(body, "generationConfig", "generation_config")
    if key is None or body[key] is None:
        return None
    config = obj(body[key], (*base, key))
    limit_key = first_key(config, "maxOutputTokens", "max_output_tokens")
    return opt_int(config, limit_key, (*base, key)) if limit_key else None


def candidate_count(body: dict[str, Any]) -> int:
    """``generationConfig.candidateCount``: how many answers were asked for (default 1)."""
    key = first_key(body, "generationConfig", "generation_config")
    if key is None or not isinstance(body[key], dict):
        return 1
    config = body[key]
    count_key = first_key(config, "candidateCount", "candidate_count")
    count = opt_int(config, count_key, (key,)) if count_key else None
    return max(count or 1, 1)


def parse_count_tokens(body: dict[str, Any], c: Collected) -> None:
    """``countTokens``: plain ``contents`` or a whole ``generateContentRequest``."""
    key = first_key(body, "generateContentRequest", "generate_content_request")
    if key is not None:
        parse_generate(obj(body[key], (key,)), c, (key,))
    elif "contents" in body:
        parse_generate(body, c)


def parse_embed(body: dict[str, Any], c: Collected) -> None:
    """``embedContent`` (one ``content``) and ``batchEmbedContents`` (``requests[].content``)."""
    if "requests" in body:
        for i, request in enumerate(arr(body["requests"], ("requests",))):
            request = obj(request, ("requests", i))
            _content(c, Role.INPUT, request.get("content"), ("requests", i, "content"))
    else:
        _content(c, Role.INPUT, body.get("content"), ("content",))


def _content(c: Collected, role: str, content: Any, path: JsonPath) -> None:
    """A Content object: ``parts`` of text, inline or file data, function calls and responses."""
    content = obj(content, path)
    parts = content.get("parts")
    if parts is None:
        return
    for j, part in enumerate(arr(parts, (*path, "parts"))):
        _part(c, role, obj(part, (*path, "parts", j)), (*path, "parts", j))


def _part(c: Collected, role: str, part: dict[str, Any], path: JsonPath) -> None:
    if "text" in part:
        c.text(role, (*path, "text"), part["text"])
        return
    key = first_key(part, "inlineData", "inline_data", "fileData", "file_data")
    if key is not None:
        blob = obj(part[key], (*path, key))
        media = blob.get("mimeType", blob.get("mime_type"))
        c.attach(_kind(media), path, media)
        return
    key = first_key(part, "functionCall", "function_call")
    if key is not None:
        call = obj(part[key], (*path, key))
        if "args" in call:
            c.leaves(Role.TOOL_CALL, (*path, key, "args"), call["args"])
        return
    key = first_key(part, "functionResponse", "function_response")
    if key is not None:
        response = obj(part[key], (*path, key))
        if "response" in response:
            c.leaves(Role.TOOL_RESULT, (*path, key, "response"), response["response"])
        return
    key = first_key(part, "executableCode", "executable_code")
    if key is not None:
        c.maybe_text(role, obj(part[key], (*path, key)), "code", (*path, key))
        return
    key = first_key(part, "codeExecutionResult", "code_execution_result")
    if key is not None:
        c.maybe_text(Role.TOOL_RESULT, obj(part[key], (*path, key)), "output", (*path, key))


def _kind(media: object) -> str:
    if isinstance(media, str):
        for prefix in ("image", "audio", "video"):
            if media.startswith(prefix + "/"):
                return prefix
    return "file"


def usage(meta: Any) -> Usage | None:
    """``usageMetadata``: thinking tokens are billed as output, tool-use prompt tokens as input."""
    if not isinstance(meta, dict):
        return None
    return Usage(
        input_tokens=as_int(meta.get("promptTokenCount"))
        + as_int(meta.get("toolUsePromptTokenCount")),
        output_tokens=as_int(meta.get("candidatesTokenCount"))
        + as_int(meta.get("thoughtsTokenCount")),
        cache_read_tokens=as_int(meta.get("cachedContentTokenCount")),
    )


class GenerateEvents:
    """Folds GenerateContentResponse objects (whole, or stream pieces) into a summary.

    Each streamed piece carries the usage so far, so the last one wins."""

    def __init__(self, summary: ResponseSummary, text: TextCollector) -> None:
        self.summary = summary
        self.text = text
        self.finished = False  # a piece with a finishReason and the usage was read

    def handle(self, data: Any) -> None:
        if not isinstance(data, dict):
            return
        if isinstance(data.get("modelVersion"), str):
            self.summary.model = data["modelVersion"]
        found = usage(data.get("usageMetadata"))
        if found is not None:
            self.summary.usage = found
        candidates = data.get("candidates") or ()
        if found is not None and any(dig(c, "finishReason") for c in candidates):
            self.finished = True
        for candidate in candidates:
            parts = dig(candidate, "content", "parts")
            for part in parts if isinstance(parts, list) else ():
                if isinstance(part, dict) and not part.get("thought"):
                    self.text.add(part.get("text"))


def summarize(data: Any) -> ResponseSummary:
    """A complete ``generateContent`` response."""
    summary = ResponseSummary()
    text = TextCollector()
    GenerateEvents(summary, text).handle(data)
    summary.text = text.value
    return summary
