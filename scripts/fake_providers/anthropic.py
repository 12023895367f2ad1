"""Anthropic Messages API: ``/v1/messages`` (JSON and SSE), ``/v1/messages/count_tokens``, and the
same bodies on Vertex AI (``:rawPredict`` / ``:streamRawPredict``). Bedrock's InvokeModel reuses
:func:`message` and :func:`stream_events`."""

from __future__ import annotations

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

FAMILY = "anthropic"

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error(status: int, message: str) -> Reply:
    """``{"type": "error", "error": {"type", "message"}, "request_id"}``."""
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    rid = new_id("req_", 24)
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": rid}
    return json_reply(body, status, {"request-id": rid})


def not_found(method: str, path: str) -> str:
    return "Not Found"


def parse(req: Incoming) -> Prompt:
    """A Messages request; on Vertex and Bedrock the model comes from the URL, not the body."""
    body = req.body
    model = req.params.get("model") or (body.get("model") if isinstance(body, dict) else None)
    if not isinstance(model, str) or not model:
        raise FakeError(400, "model: Field required")
    messages = require(body, "messages", list, "messages: Field required")
    if "max_tokens" not in body and not req.path.endswith("/count_tokens"):
        raise FakeError(400, "max_tokens: Field required")
    texts = texts_of(body.get("system"))
    user: list[str] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise FakeError(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
        found = texts_of(message.get("content"))
        texts += found
        if message["role"] == "user":
            user += found
    return Prompt(
        model, texts, user, bool(body.get("stream")) or req.path.endswith(":streamRawPredict")
    )


def _usage(answer: Answer, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": answer.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }


def message(model: str, answer: Answer) -> dict[str, Any]:
    """A complete Messages response body."""
    return {
        "id": new_id("msg_fake", 24),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": answer.text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _usage(answer, answer.output_tokens),
    }


def stream_events(model: str, answer: Answer) -> list[dict[str, Any]]:
    """The stream as event objects: message_start (usage with input tokens and output_tokens 1),
    content_block_start, ping, one text_delta per piece, content_block_stop, message_delta with
    the stop reason and cumulative output tokens, message_stop."""
    start = message(model, answer)
    start.update(content=[], stop_reason=None, usage=_usage(answer, 1))
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        for piece in answer.pieces
    ]
    events += [
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": answer.output_tokens},
        },
        {"type": "message_stop"},
    ]
    return events


def render(req: Incoming, prompt: Prompt, answer: Answer) -> Reply:
    headers = {"request-id": new_id("req_", 24)}
    if not prompt.stream:
        return json_reply(message(prompt.model, answer), headers=headers)
    events = [sse(e, event=e["type"]) for e in stream_events(prompt.model, answer)]
    return stream_reply(events, "text/event-stream; charset=utf-8", headers)


def render_count_tokens(req: Incoming, prompt: Prompt, answer: Answer) -> Reply:
    return json_reply({"input_tokens": answer.input_tokens})
