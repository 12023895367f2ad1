"""Amazon Bedrock runtime: Converse, ConverseStream, InvokeModel and InvokeModelWithResponseStream.

Streams are AWS event streams (``application/vnd.amazon.eventstream``), one frame per HTTP chunk.
InvokeModel is answered for Anthropic model ids only (``anthropic.*``, ``us.anthropic.*``, ...),
with Anthropic bodies; other model families get a ValidationException.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from fake_providers import anthropic
from fake_providers.common import (
    Answer,
    FakeError,
    Incoming,
    Prompt,
    Reply,
    aws_padding,
    dumps,
    event_stream_frame,
    json_reply,
    require,
    stream_reply,
    texts_of,
)

FAMILY = "bedrock"
EVENT_STREAM = "application/vnd.amazon.eventstream"
LATENCY_MS = 42

_EXCEPTIONS = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def error(status: int, message: str) -> Reply:
    """``{"message"}`` with the exception name in ``x-amzn-ErrorType``."""
    name = _EXCEPTIONS.get(
        status, "InternalServerException" if status >= 500 else "ValidationException"
    )
    headers = {
        "x-amzn-ErrorType": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/",
        "x-amzn-RequestId": _request_id(),
    }
    return json_reply({"message": message}, status, headers)


def not_found(method: str, path: str) -> str:
    return f"Unable to determine service/operation name for {method} {path}"


def _request_id() -> str:
    return str(uuid.uuid4())


def _frame(event_type: str, payload: dict[str, Any]) -> bytes:
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return event_stream_frame(headers, dumps({**payload, "p": aws_padding(len(dumps(payload)))}))


# --- Converse --------------------------------------------------------------------------------


def parse_converse(req: Incoming) -> Prompt:
    messages = require(req.body, "messages", list, "Malformed input request: messages is required")
    texts = texts_of(req.body.get("system"))
    user: list[str] = []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("content"), list):
            raise FakeError(400, "Malformed input request: message content must be a list")
        found = texts_of(message["content"])
        texts += found
        if message.get("role") == "user":
            user += found
    return Prompt(req.params["model"], texts, user, req.params["action"] == "converse-stream")


def _usage(answer: Answer) -> dict[str, int]:
    return {
        "inputTokens": answer.input_tokens,
        "outputTokens": answer.output_tokens,
        "totalTokens": answer.input_tokens + answer.output_tokens,
    }


def render_converse(req: Incoming, prompt: Prompt, answer: Answer) -> Reply:
    headers = {"x-amzn-RequestId": _request_id()}
    if not prompt.stream:
        body = {
            "output": {"message": {"role": "assistant", "content": [{"text": answer.text}]}},
            "stopReason": "end_turn",
            "usage": _usage(answer),
            "metrics": {"latencyMs": LATENCY_MS},
        }
        return json_reply(body, headers=headers)
    frames = [_frame("messageStart", {"role": "assistant"})]
    frames += [
        _frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
        for piece in answer.pieces
    ]
    frames += [
        _frame("contentBlockStop", {"contentBlockIndex": 0}),
        _frame("messageStop", {"stopReason": "end_turn"}),
        _frame("metadata", {"usage": _usage(answer), "metrics": {"latencyMs": LATENCY_MS}}),
    ]
    return stream_reply(frames, EVENT_STREAM, headers)


# --- InvokeModel -----------------------------------------------------------------------------


def parse_invoke(req: Incoming) -> Prompt:
    model = req.params["model"]
    if "anthropic." not in model:
        raise FakeError(
            400,
            f"The fake provider answers InvokeModel only for Anthropic models, not {model}; "
            "use Converse",
        )
    if not isinstance(req.body, dict) or "anthropic_version" not in req.body:
        raise FakeError(
            400, "Malformed input request: #: required key [anthropic_version] not found"
        )
    prompt = anthropic.parse(req)
    prompt.stream = req.params["action"] == "invoke-with-response-stream"
    return prompt


def render_invoke(req: Incoming, prompt: Prompt, answer: Answer) -> Reply:
    if not prompt.stream:
        headers = {
            "x-amzn-RequestId": _request_id(),
            "X-Amzn-Bedrock-Input-Token-Count": str(answer.input_tokens),
            "X-Amzn-Bedrock-Output-Token-Count": str(answer.output_tokens),
            "X-Amzn-Bedrock-Invocation-Latency": str(LATENCY_MS),
        }
        return json_reply(anthropic.message(prompt.model, answer), headers=headers)
    events = anthropic.stream_events(prompt.model, answer)
    events[-1]["amazon-bedrock-invocationMetrics"] = {
        "inputTokenCount": answer.input_tokens,
        "outputTokenCount": answer.output_tokens,
        "invocationLatency": LATENCY_MS,
        "firstByteLatency": LATENCY_MS // 2,
    }
    frames = [
        _frame("chunk", {"bytes": base64.b64encode(json.dumps(e).encode()).decode()})
        for e in events
    ]
    headers = {"x-amzn-RequestId": _request_id(), "X-Amzn-Bedrock-Content-Type": "application/json"}
    return stream_reply(frames, EVENT_STREAM, headers)
