"""Cohere v2 Chat (``/v2/chat``): JSON, and SSE with message-start, content-start, content-delta,
content-end and message-end (which carries the finish reason and usage)."""

from __future__ import annotations

import uuid
from typing import Any

from fake_providers.common import (
    Answer,
    FakeError,
    Incoming,
    Prompt,
    Reply,
    json_reply,
    require,
    sse,
    stream_reply,
    texts_of,
)

FAMILY = "cohere"


def error(status: int, message: str) -> Reply:
    """``{"message"}``."""
    return json_reply({"message": message}, status)


def not_found(method: str, path: str) -> str:
    return f"{method} {path} not found"


def parse(req: Incoming) -> Prompt:
    model = require(req.body, "model", str, "model is required")
    messages = require(req.body, "messages", list, "messages is required")
    texts: list[str] = []
    user: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            raise FakeError(400, "invalid message: expected an object")
        found = texts_of(message.get("content"))
        texts += found
        if message.get("role") == "user":
            user += found
    return Prompt(model, texts, user, bool(req.body.get("stream")))


def _usage(answer: Answer) -> dict[str, Any]:
    tokens = {"input_tokens": answer.input_tokens, "output_tokens": answer.output_tokens}
    return {"billed_units": dict(tokens), "tokens": dict(tokens)}


def render(req: Incoming, prompt: Prompt, answer: Answer) -> Reply:
    cid = str(uuid.uuid4())
    if not prompt.stream:
        body = {
            "id": cid,
            "finish_reason": "COMPLETE",
            "message": {"role": "assistant", "content": [{"type": "text", "text": answer.text}]},
            "usage": _usage(answer),
        }
        return json_reply(body)

    def event(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, **fields}, event=kind)

    events = [
        event(
            "message-start",
            id=cid,
            delta={
                "message": {
                    "role": "assistant",
                    "content": [],
                    "tool_plan": "",
                    "tool_calls": [],
                    "citations": [],
                }
            },
        ),
        event(
            "content-start", index=0, delta={"message": {"content": {"type": "text", "text": ""}}}
        ),
    ]
    events += [
        event("content-delta", index=0, delta={"message": {"content": {"text": piece}}})
        for piece in answer.pieces
    ]
    events += [
        event("content-end", index=0),
        event("message-end", delta={"finish_reason": "COMPLETE", "usage": _usage(answer)}),
    ]
    return stream_reply(events, "text/event-stream")
