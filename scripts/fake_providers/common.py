"""What every fake format shares: the parsed request, behaviour markers, the answer, the reply, and
SSE / AWS event-stream framing.

Token counts are computed so that tests can follow usage through the gateway:

* input tokens = whitespace-separated words in every piece of request text the format carries
  (system prompt, messages, tool results; not images or tool definitions), no per-message overhead;
* output tokens = whitespace-separated words in the answer.
"""

from __future__ import annotations

import json
import re
import struct
import time
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


class FakeError(Exception):
    """Answer with ``status`` in the provider family's error shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Incoming:
    """An HTTP request as a format sees it: header names lower-case, ``params`` from the route."""

    method: str
    host: str
    path: str  # without the query string
    query: dict[str, str]
    headers: dict[str, str]
    params: dict[str, str]
    body: Any  # the parsed JSON body


@dataclass(slots=True)
class Prompt:
    """What a format read from a request: all its text, the user's part of it, and flags."""

    model: str
    texts: list[str]  # every piece of request text: counted as input tokens, scanned for markers
    user_texts: list[str]  # what users said: the answer in echo mode
    stream: bool = False
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Answer:
    """What the fake model says, already cut into the pieces a stream sends one per event."""

    text: str
    pieces: list[str]
    input_tokens: int
    output_tokens: int


@dataclass(slots=True)
class Reply:
    """A response to send. ``events`` set means a streamed body: each item goes out as one HTTP
    chunk, flushed at once; otherwise ``body`` goes out with a Content-Length."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    events: list[bytes] | None = None


# --- behaviour -------------------------------------------------------------------------------

MARKER = re.compile(r"\[\[fake:([^\]]*)\]\]")


@dataclass(slots=True)
class Behavior:
    """How to misbehave, from the ``x-fake-behavior`` header and ``[[fake:...]]`` prompt markers.

    Items are separated by commas, semicolons or spaces: ``echo``, ``error=STATUS``,
    ``slow=MS``, ``break``, ``chunks=N``, ``split``, ``linger=MS``.
    """

    echo: bool = False
    error: int | None = None
    slow_ms: int = 0
    break_stream: bool = False
    chunks: int | None = None
    split: bool = False
    linger_ms: int = 0  # after a stream's last event, wait before ending the body


def parse_behavior(header: str | None, texts: Iterable[str]) -> Behavior:
    """Read the behaviour; raises FakeError(400) on an item it does not know."""
    items: list[str] = []
    if header:
        items += re.split(r"[,;\s]+", header.strip())
    for text in texts:
        for m in MARKER.finditer(text):
            items += re.split(r"[,;\s]+", m.group(1).strip())
    behavior = Behavior()
    for item in filter(None, items):
        name, _, value = item.partition("=")
        try:
            if name == "echo":
                behavior.echo = True
            elif name == "break":
                behavior.break_stream = True
            elif name == "split":
                behavior.split = True
            elif name == "error":
                behavior.error = int(value)
                if not 400 <= behavior.error <= 599:
                    raise ValueError
            elif name == "slow":
                behavior.slow_ms = max(0, int(value))
            elif name == "chunks":
                behavior.chunks = max(0, int(value))
            elif name == "linger":
                behavior.linger_ms = max(0, int(value))
            else:
                raise ValueError
        except ValueError:
            raise FakeError(
                400,
                f"fake provider: unknown behaviour {item!r}; use echo, error=4xx|5xx, slow=MS, "
                f"break, chunks=N, split or linger=MS",
            ) from None
    return behavior


# --- answer ----------------------------------------------------------------------------------


def default_answer(model: str) -> str:
    """The fixed answer: names the model, several words so that streams have several events."""
    return f"Hello from the fake {model}. How can I help?"


def count_words(texts: Iterable[str]) -> int:
    return sum(len(t.split()) for t in texts)


def word_pieces(text: str) -> list[str]:
    """``"Hi there"`` -> ``["Hi ", "there"]``; joined back they give ``text`` exactly."""
    pieces = re.findall(r"\S+\s*", text)
    lead = text[: len(text) - len(text.lstrip())]
    if pieces and lead:
        pieces[0] = lead + pieces[0]
    return pieces


def _group(pieces: list[str], n: int) -> list[str]:
    if n <= 0 or not pieces:
        return []
    n = min(n, len(pieces))
    size, extra = divmod(len(pieces), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append("".join(pieces[start:end]))
        start = end
    return out


def answer_for(prompt: Prompt, behavior: Behavior) -> Answer:
    """The answer: the default sentence, or with ``echo`` the user text joined by newlines.
    ``chunks=N`` makes the default answer N words long (one per event); an echoed answer is
    split into at most N pieces."""
    if behavior.echo:
        text = "\n".join(prompt.user_texts)
        pieces = word_pieces(text)
        if behavior.chunks is not None:
            pieces = _group(pieces, behavior.chunks)
            text = "".join(pieces)
    else:
        words = default_answer(prompt.model).split()
        if behavior.chunks is not None:
            words = [words[i % len(words)] for i in range(behavior.chunks)]
        text = " ".join(words)
        pieces = word_pieces(text)
    return Answer(text, pieces, count_words(prompt.texts), len(text.split()))


# --- reading request text --------------------------------------------------------------------

_NESTED = ("content", "output", "parts", "toolResult")


def texts_of(value: Any) -> list[str]:
    """Every text in a message content value, whatever the format: a string, a list of parts,
    parts with ``text``, nested ``content`` (tool results), Bedrock ``toolResult``."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [t for item in value for t in texts_of(item)]
    if isinstance(value, dict):
        if isinstance(value.get("text"), str):
            return [value["text"]]
        return [t for key in _NESTED if key in value for t in texts_of(value[key])]
    return []


def require(body: Any, key: str, kind: type, message: str) -> Any:
    """``body[key]`` if it has the right type, else FakeError(400, message)."""
    if not isinstance(body, dict) or not isinstance(body.get(key), kind):
        raise FakeError(400, message)
    return body[key]


# --- output ----------------------------------------------------------------------------------


def new_id(prefix: str = "", length: int = 24) -> str:
    return prefix + uuid.uuid4().hex[:length]


def now() -> int:
    return int(time.time())


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def json_reply(
    obj: Any, status: int = 200, headers: dict[str, str] | None = None, content_type: str = ""
) -> Reply:
    h = {"Content-Type": content_type or "application/json"}
    h.update(headers or {})
    return Reply(status, h, dumps(obj))


def sse(data: Any, event: str | None = None, newline: str = "\n") -> bytes:
    """One server-sent event: optional ``event:`` line, one ``data:`` line, blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}{newline}" if event else ""
    return f"{head}data: {payload}{newline}{newline}".encode()


def stream_reply(
    events: list[bytes], content_type: str, headers: dict[str, str] | None = None
) -> Reply:
    h = {"Content-Type": content_type, "Cache-Control": "no-cache"}
    h.update(headers or {})
    return Reply(200, h, events=events)


def event_stream_frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message (``application/vnd.amazon.eventstream``).

    Layout: total length (4 bytes), headers length (4), CRC32 of those 8 bytes, headers, payload,
    CRC32 of everything before it; all big-endian. Each header: name length (1 byte), name, value
    type 7 (string), value length (2 bytes), value.
    """
    raw_headers = b""
    for name, value in headers.items():
        n, v = name.encode(), value.encode()
        raw_headers += struct.pack(">B", len(n)) + n + struct.pack(">BH", 7, len(v)) + v
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw_headers + payload
    return message + struct.pack(">I", zlib.crc32(message))


def aws_padding(n: int) -> str:
    """The ``p`` field Bedrock adds to stream payloads so that their length leaks nothing."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return alphabet[: 4 + n % 40]
