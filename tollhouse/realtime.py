"""Websockets on AI hosts (OpenAI and Azure Realtime, Gemini Live): each client frame is one JSON
event, read into an :class:`Exchange` so the DLP and injection engines scan it like a request body.

Every string value and every object key of an event becomes a segment (keys with form ``key``),
with the role its place in the event gives it: session instructions are the application's system
prompt, an item's ``role`` says who wrote its content, function outputs are tool results, and the
rest (tool definitions, ids, metadata) is a ``field``. A string that is base64 of UTF-8 text is
scanned decoded. The one thing not scanned as text is binary media at a media field (``audio`` of
``input_audio_buffer.append``, Gemini's ``realtimeInput.audio.data``, an image data URL): PCM
audio in base64 holds no text the model reads, and scanning megabytes of base64 a second would
only make noise and stall the loop. It is recorded as an attachment instead.

The gateway decides per frame: forward as is, forward rewritten (redacted), or refuse, which
drops the frame and closes the connection (:class:`FrameRefused`, whose message, like every
message here, names types and fields, never client text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tollhouse.dlp.scanner import finding_rows
from tollhouse.exchange import Attachment, Exchange, JsonPath, Role, Segment
from tollhouse.providers.base import ParseError
from tollhouse.providers.jsonbody import MAX_DEPTH, dump, strict_loads
from tollhouse.providers.walk import is_binary_blob, string_segment, write_back

OPERATION = "realtime"

# Websocket close codes (RFC 6455, 7.4.1) the gateway sends when it refuses a frame.
POLICY_VIOLATION = 1008
UNSUPPORTED_DATA = 1003
INVALID_PAYLOAD = 1007
TOO_BIG = 1009
INTERNAL_ERROR = 1011

# Where a string is binary media rather than text (OpenAI's `audio`, Gemini's `data` under
# `audio`/`video`/`mediaChunks`/`inlineData`, data-URL images). Only binary is skipped there:
# base64 that decodes to text is scanned, whatever the field.
_MEDIA_KEYS = {"audio": "audio", "data": "file", "image_url": "image", "video": "video"}
_ROLE_NAMES = {
    "system": Role.SYSTEM,
    "developer": Role.SYSTEM,
    "user": Role.USER,
    "assistant": Role.ASSISTANT,
    "model": Role.ASSISTANT,
}
# Keys whose content speaks with one role, in both the lowerCamel and snake_case spellings the
# protobuf JSON of Gemini Live accepts.
_KEY_ROLES = {
    "instructions": Role.SYSTEM,
    "systemInstruction": Role.SYSTEM,
    "system_instruction": Role.SYSTEM,
    "realtimeInput": Role.USER,
    "realtime_input": Role.USER,
    "clientContent": Role.USER,
    "client_content": Role.USER,
    "toolResponse": Role.TOOL_RESULT,
    "tool_response": Role.TOOL_RESULT,
    "functionResponse": Role.TOOL_RESULT,
    "function_response": Role.TOOL_RESULT,
    "tools": Role.FIELD,  # tool definitions: the application's, read like any other field
}
_TYPE_ROLES = {"function_call_output": Role.TOOL_RESULT, "function_call": Role.TOOL_CALL}


class FrameRefused(Exception):
    """A client frame the gateway will not forward. ``code`` is the websocket close code; the
    message is safe for the client, the log and the audit: it never quotes the frame."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def read_event(payload: str | bytes) -> dict[str, Any]:
    """The JSON object in a frame, read as strictly as a request body (``strict_loads``):
    duplicate keys at any depth, NaN or Infinity, invalid UTF-8 or anything but an object is
    refused, since the provider might read it otherwise."""
    try:
        value = strict_loads(payload)
    except ParseError as exc:  # names a position or location, never a value
        raise FrameRefused(INVALID_PAYLOAD, f"frame is not a valid JSON event: {exc}") from None
    if not isinstance(value, dict):
        raise FrameRefused(INVALID_PAYLOAD, "frame is not a JSON object")
    return value


def event_exchange(provider: str, api: str, path: str, event: dict[str, Any]) -> Exchange:
    """The exchange the scanners read for one event: every string and key as a segment."""
    exchange = Exchange(provider=provider, api=api, operation=OPERATION, path=path, body=event)
    _walk(event, (), Role.FIELD, exchange.segments, exchange.attachments, 0)
    return exchange


def _walk(
    value: Any,
    path: JsonPath,
    role: str,
    segments: list[Segment],
    attachments: list[Attachment],
    depth: int,
) -> None:
    if depth > MAX_DEPTH:
        raise FrameRefused(INVALID_PAYLOAD, "frame is nested too deeply")
    if isinstance(value, str):
        key = path[-1] if path else None
        if isinstance(key, str) and key in _MEDIA_KEYS and is_binary_blob(value):
            attachments.append(Attachment(_MEDIA_KEYS[key], path))
        elif (segment := string_segment(role, path, value)) is not None:
            segments.append(segment)
        else:  # binary base64 elsewhere: no text to scan either
            attachments.append(Attachment("binary", path))
    elif isinstance(value, dict):
        role = _object_role(value, role)
        for key, item in value.items():
            segments.append(Segment(Role.FIELD, (*path, key), key, "key"))
            child = _KEY_ROLES.get(key, role)
            _walk(item, (*path, key), child, segments, attachments, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk(item, (*path, i), role, segments, attachments, depth + 1)


def _object_role(obj: dict[str, Any], inherited: str) -> str:
    """Who wrote an object's text: its ``role`` (an unknown one is untrusted: user), else its
    ``type`` (function outputs are tool results), else whatever encloses it."""
    role = obj.get("role")
    if isinstance(role, str):
        return _ROLE_NAMES.get(role.lower(), Role.USER)
    kind = obj.get("type")
    if isinstance(kind, str) and kind in _TYPE_ROLES:
        return _TYPE_ROLES[kind]
    return inherited


def rewritten(exchange: Exchange) -> str | None:
    """The event as it must go upstream once scanners changed segments, or None: unchanged
    frames are forwarded byte for byte."""
    if not exchange.changed_segments:
        return None
    write_back(exchange.body, [exchange.segments[i] for i in sorted(exchange.changed_segments)])
    return dump(exchange.body).decode("utf-8")


@dataclass
class Tally:
    """What happened on one websocket connection, for its single audit row."""

    client_frames: int = 0
    server_frames: int = 0
    scanned: int = 0
    rewritten: int = 0
    refused: int = 0
    unscanned_passed: int = 0  # binary frames passed by an `unscannable: pass` policy
    media: int = 0  # binary media fields (audio) forwarded unscanned as text
    bytes_in: int = 0
    dlp_actions: dict[str, int] = field(default_factory=dict)  # "ENTITY:action" -> count
    findings: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    injection_score: float | None = None
    injection_verdict: str | None = None
    closed_by_gateway: str | None = None  # the close reason, when the gateway closed

    def add_findings(self, rows: list[dict[str, Any]]) -> None:
        """Rows of ``DlpResult.audit_rows()``, summed over frames by detector, entity, action
        and location."""
        for row in rows:
            key = (row["detector"], row["entity_type"], row["action"], row["location"])
            self.findings[key] = self.findings.get(key, 0) + int(row["count"])
            action = f"{row['entity_type']}:{row['action']}"
            self.dlp_actions[action] = self.dlp_actions.get(action, 0) + int(row["count"])

    def add_injection(self, score: float, verdict: str) -> None:
        """Keep the most suspicious frame's score and verdict."""
        if self.injection_score is None or score > self.injection_score:
            self.injection_score = score
        rank = {"allow": 0, "flag": 1, "block": 2}
        if self.injection_verdict is None or rank.get(verdict, 2) > rank.get(
            self.injection_verdict, 0
        ):
            self.injection_verdict = verdict

    def finding_rows(self, stage: str = "dlp") -> list[dict[str, Any]]:
        return finding_rows(self.findings, stage)

    def dlp_summary(self) -> str | None:
        return ",".join(f"{k}={n}" for k, n in sorted(self.dlp_actions.items())) or None

    def counts(self) -> dict[str, int]:
        return {
            "client_frames": self.client_frames,
            "server_frames": self.server_frames,
            "scanned": self.scanned,
            "rewritten": self.rewritten,
            "refused": self.refused,
            "unscanned_passed": self.unscanned_passed,
            "media": self.media,
            "bytes_in": self.bytes_in,
        }


def close_reason(reason: str) -> str:
    """A close reason that fits a close frame (123 bytes of UTF-8 after the code)."""
    data = reason.encode("utf-8")
    if len(data) <= 123:
        return reason
    return data[:120].decode("utf-8", "ignore") + "..."
