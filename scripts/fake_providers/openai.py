"""OpenAI and everything that speaks its format (Azure OpenAI, Mistral, Groq, Together, Fireworks,
DeepSeek, xAI, OpenRouter, Perplexity, Hugging Face, Gemini's and Cohere's compatibility paths):
chat completions, Responses, legacy completions and embeddings, JSON and SSE."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

from fake_providers.common import (
    Answer,
    FakeError,
    Incoming,
    Prompt,
    Reply,
    json_reply,
    new_id,
    now,
    require,
    sse,
    stream_reply,
    texts_of,
)

FAMILY = "openai"
SSE = "text/event-stream; charset=utf-8"
FINGERPRINT = "fp_fake00001"
AZURE_DEPLOYED_MODEL = "gpt-4o-mini-2024-07-18"  # what every fake Azure deployment runs
EMBEDDING_DIMENSIONS = 8

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}


def error(status: int, message: str) -> Reply:
    """``{"error": {"message", "type", "param", "code"}}`` as OpenAI sends it."""
    kind, code = _ERROR_TYPES.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return json_reply(body, status, {"x-request-id": new_id("req_", 32)})


def not_found(method: str, path: str) -> str:
    return f"Invalid URL ({method} {path})"


def _headers() -> dict[str, str]:
    return {"x-request-id": new_id("req_", 32), "openai-processing-ms": "1"}


def _model(req: Incoming) -> str:
    """The body's model, or on Azure's deployment paths the model the deployment runs: Azure
    ignores a model in the body there, and answers with the model's name, not the deployment's."""
    if "deployment" in req.params:
        return AZURE_DEPLOYED_MODEL
    model = req.body.get("model") if isinstance(req.body, dict) else None
    if isinstance(model, str) and model:
        return model
    raise FakeError(400, "you must provide a model parameter")


def _is_azure(req: Incoming) -> bool:
    return "deployment" in req.params or req.host.endswith(".azure.com")


def _usage_chat(answer: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


_SAFE = {"filtered": False, "severity": "safe"}
_CONTENT_FILTER = {k: _SAFE for k in ("hate", "self_harm", "sexual", "violence")}


# --- chat completions ------------------------------------------------------------------------


def parse_chat(req: Incoming) -> Prompt:
    messages = require(req.body, "messages", list, "Missing required parameter: 'messages'.")
    model = _model(req)
    texts: list[str] = []
    user: list[str] = []
    for message in messages:
        if not isinstance(message, dict):
            raise FakeError(400, "Invalid type for 'messages[]': expected an object.")
        found = texts_of(message.get("content"))
        texts += found
        if message.get("role") == "user":
            user += found
    stream = bool(req.body.get("stream"))
    options = req.body.get("stream_options") or {}
    include_usage = stream and isinstance(options, dict) and bool(options.get("include_usage"))
    return Prompt(
        model, texts, user, stream, {"include_usage": include_usage, "azure": _is_azure(req)}
    )


def render_chat(req: Incoming, prompt: Prompt, answer: Answer) -> Reply:
    cid, created = new_id("chatcmpl-", 29), now()
    azure = prompt.options["azure"]
    if not prompt.stream:
        choice: dict[str, Any] = {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": answer.text,
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
        body: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": prompt.model,
            "choices": [choice],
            "usage": _usage_chat(answer),
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
        }
        if azure:
            choice["content_filter_results"] = _CONTENT_FILTER
            body["prompt_filter_results"] = [
                {"prompt_index": 0, "content_filter_results": _CONTENT_FILTER}
            ]
        return json_reply(body, headers=_headers())

    include_usage = prompt.options["include_usage"]

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        obj: dict[str, Any] = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": prompt.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            obj["usage"] = None
        return sse(obj)

    events: list[bytes] = []
    if azure:  # Azure opens with a choice-less chunk that carries only the prompt filter results
        events.append(
            sse(
                {
                    "choices": [],
                    "created": 0,
                    "id": "",
                    "model": "",
                    "object": "",
                    "prompt_filter_results": [
                        {"prompt_index": 0, "content_filter_results": _CONTENT_FILTER}
                    ],
                }
            )
        )
    events.append(chunk({"role": "assistant", "content": "", "refusal": None}, None))
    events += [chunk({"content": piece}, None) for piece in answer.pieces]
    events.append(chunk({}, "stop"))
    if include_usage:
        events.append(
            sse(
                {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": prompt.model,
                    "service_tier": "default",
                    "system_fingerprint": FINGERPRINT,
                    "choices": [],
                    "usage": _usage_chat(answer),
                }
            )
        )
    events.append(sse("[DONE]"))
    return stream_reply(events, SSE, _headers())


# --- Responses API ---------------------------------------------------------------------------


def parse_responses(req: Incoming) -> Prompt:
    if not isinstance(req.body, dict) or "input" not in req.body:
        raise FakeError(400, "Missing required parameter: 'input'.")
    model = _model(req)
    texts = texts_of(req.body.get("instructions"))
    user: list[str] = []
    items = req.body["input"]
    if isinstance(items, str):
        texts.append(items)
        user.append(items)
    elif isinstance(items, list):
        for item in items:
            found = texts_of(item)
            texts += found
            if isinstance(item, dict) and item.get("role") == "user":
                user += found
    else:
        raise FakeError(400, "Invalid type for 'input': expected a string or an array.")
    return Prompt(model, texts, user, bool(req.body.get("stream")))


def _response(req: Incoming, prompt: Prompt, rid: str, created: int, status: str) -> dict[str, Any]:
    body = req.body
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": prompt.model,
        "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": None,
        "user": body.get("user"),
        "metadata": body.get("metadata", {}),
    }


def _usage_responses(answer: Answer) -> dict[str, Any]:
    return {
        "input_tokens": answer.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": answer.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": answer.input_tokens + answer.output_tokens,
    }


def render_responses(req: Incoming, prompt: Prompt, answer: Answer) -> Reply:
    rid, mid, created = new_id("resp_", 48), new_id("msg_", 48), now()
    part = {"type": "output_text", "text": answer.text, "annotations": [], "logprobs": []}
    item = {
        "id": mid,
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [part],
    }
    final = _response(req, prompt, rid, created, "completed")
    final["output"] = [item]
    final["usage"] = _usage_responses(answer)
    if not prompt.stream:
        return json_reply(final, headers=_headers())

    events: list[bytes] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append(sse({"type": kind, "sequence_number": len(events), **fields}, event=kind))

    ids = {"item_id": mid, "output_index": 0, "content_index": 0}
    emit("response.created", response=_response(req, prompt, rid, created, "in_progress"))
    emit("response.in_progress", response=_response(req, prompt, rid, created, "in_progress"))
    emit(
        "response.output_item.added",
        output_index=0,
        item={
            "id": mid,
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        },
    )
    emit("response.content_part.added", **ids, part={**part, "text": ""})
    for piece in answer.pieces:
        emit("response.output_text.delta", **ids, delta=piece, logprobs=[])
    emit("response.output_text.done", **ids, text=answer.text, logprobs=[])
    emit("response.content_part.done", **ids, part=part)
    emit("response.output_item.done", output_index=0, item=item)
    emit("response.completed", response=final)
    return stream_reply(events, SSE, _headers())


# --- legacy completions ----------------------------------------------------------------------


def parse_completions(req: Incoming) -> Prompt:
    if not isinstance(req.body, dict) or "prompt" not in req.body:
        raise FakeError(400, "Missing required parameter: 'prompt'.")
    texts = texts_of(req.body["prompt"])
    stream = bool(req.body.get("stream"))
    options = req.body.get("stream_options") or {}
    include_usage = stream and isinstance(options, dict) and bool(options.get("include_usage"))
    return Prompt(_model(req), texts, list(texts), stream, {"include_usage": include_usage})


def render_completions(req: Incoming, prompt: Prompt, answer: Answer) -> Reply:
    cid, created = new_id("cmpl-", 29), now()
    usage = {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": answer.output_tokens,
        "total_tokens": answer.input_tokens + answer.output_tokens,
    }

    def obj(text: str, finish: str | None, choices: bool = True) -> dict[str, Any]:
        return {
            "id": cid,
            "object": "text_completion",
            "created": created,
            "model": prompt.model,
            "system_fingerprint": FINGERPRINT,
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": finish}]
            if choices
            else [],
        }

    if not prompt.stream:
        return json_reply({**obj(answer.text, "stop"), "usage": usage}, headers=_headers())
    events = [sse(obj(piece, None)) for piece in answer.pieces]
    events.append(sse(obj("", "stop")))
    if prompt.options["include_usage"]:
        events.append(sse({**obj("", None, choices=False), "usage": usage}))
    events.append(sse("[DONE]"))
    return stream_reply(events, SSE, _headers())


# --- embeddings ------------------------------------------------------------------------------


def parse_embeddings(req: Incoming) -> Prompt:
    if not isinstance(req.body, dict) or "input" not in req.body:
        raise FakeError(400, "Missing required parameter: 'input'.")
    raw = req.body["input"]
    inputs = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    texts = [i if isinstance(i, str) else " ".join(map(str, i)) for i in inputs]  # token arrays
    dimensions = req.body.get("dimensions") or EMBEDDING_DIMENSIONS
    if not isinstance(dimensions, int) or not 1 <= dimensions <= 4096:
        raise FakeError(400, "Invalid value for 'dimensions'.")
    options = {"dimensions": dimensions, "base64": req.body.get("encoding_format") == "base64"}
    return Prompt(_model(req), texts, list(texts), False, options)


def embedding(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector derived from the text: same text, same vector."""
    seed = hashlib.sha256(text.encode()).digest()
    while len(seed) < dimensions * 2:
        seed += hashlib.sha256(seed).digest()
    raw = [
        (int.from_bytes(seed[2 * i : 2 * i + 2], "big") / 32767.5) - 1.0 for i in range(dimensions)
    ]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [round(x / norm, 6) for x in raw]


def render_embeddings(req: Incoming, prompt: Prompt, answer: Answer) -> Reply:
    dims = prompt.options["dimensions"]
    data = []
    for index, text in enumerate(prompt.texts):
        vector: Any = embedding(text, dims)
        if prompt.options["base64"]:
            vector = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    usage = {"prompt_tokens": answer.input_tokens, "total_tokens": answer.input_tokens}
    return json_reply(
        {"object": "list", "data": data, "model": prompt.model, "usage": usage}, headers=_headers()
    )
