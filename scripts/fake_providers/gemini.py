"""Gemini (generativelanguage.googleapis.com) and Vertex AI Gemini: ``:generateContent`` and
``:streamGenerateContent``, the latter as SSE with ``?alt=sse`` (CRLF-separated, as Google sends
it) and otherwise as one JSON array streamed element by element."""

from __future__ import annotations

import datetime
import json
from typing import Any

from fake_providers.common import (
    Answer,
    FakeError,
    Incoming,
    Prompt,
    Reply,
    json_reply,
    new_id,
    require,
    sse,
    stream_reply,
    texts_of,
)

FAMILY = "gemini"

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error(status: int, message: str) -> Reply:
    """``{"error": {"code", "message", "status"}}``."""
    state = _STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
    body = {"error": {"code": status, "message": message, "status": state}}
    return json_reply(body, status, content_type="application/json; charset=UTF-8")


def not_found(method: str, path: str) -> str:
    return "Requested entity was not found."


def parse(req: Incoming) -> Prompt:
    contents = require(
        req.body, "contents", list, "* GenerateContentRequest.contents: contents is not specified"
    )
    system = req.body.get("systemInstruction") or req.body.get("system_instruction")
    texts = texts_of(system.get("parts") if isinstance(system, dict) else system)
    user: list[str] = []
    for content in contents:
        if not isinstance(content, dict):
            raise FakeError(
                400,
                "Invalid value at 'contents' "
                "(type.googleapis.com/google.ai.generativelanguage.v1beta.Content)",
            )
        found = texts_of(content.get("parts"))
        texts += found
        if content.get("role", "user") == "user":
            user += found
    options = {"sse": req.query.get("alt") == "sse", "vertex": "/projects/" in req.path}
    return Prompt(
        req.params["model"], texts, user, req.params["method"] == "streamGenerateContent", options
    )


def _chunk(
    prompt: Prompt, rid: str, text: str, finish: bool, usage: dict[str, Any]
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}}
    if finish:
        candidate["finishReason"] = "STOP"
    candidate["index"] = 0
    out: dict[str, Any] = {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": prompt.model,
    }
    if prompt.options["vertex"]:
        out["createTime"] = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
    out["responseId"] = rid
    return out


def _usage(answer: Answer, output_tokens: int) -> dict[str, Any]:
    return {
        "promptTokenCount": answer.input_tokens,
        "candidatesTokenCount": output_tokens,
        "totalTokenCount": answer.input_tokens + output_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": answer.input_tokens}],
    }


def render(req: Incoming, prompt: Prompt, answer: Answer) -> Reply:
    """JSON, or a stream whose every chunk carries usageMetadata with the output counted so far
    (the last chunk's is the total) and whose last chunk has finishReason STOP."""
    rid = new_id("", 22)
    if not prompt.stream:
        return json_reply(
            _chunk(prompt, rid, answer.text, True, _usage(answer, answer.output_tokens))
        )
    pieces = answer.pieces or [""]
    chunks, so_far = [], 0
    for i, piece in enumerate(pieces):
        so_far += len(piece.split())
        chunks.append(_chunk(prompt, rid, piece, i == len(pieces) - 1, _usage(answer, so_far)))
    if prompt.options["sse"]:
        return stream_reply([sse(c, newline="\r\n") for c in chunks], "text/event-stream")
    events = [(b"[" if i == 0 else b",\r\n") + json.dumps(c).encode() for i, c in enumerate(chunks)]
    events.append(b"]")
    return stream_reply(events, "application/json; charset=UTF-8")
