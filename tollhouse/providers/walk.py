"""Every string the provider reads, as segments: the walk behind "scan everything".

An adapter reads the fields whose meaning it knows (messages, system prompt, tool results) with
their roles. Everything else in a JSON body is read by :func:`cover`: every other string value
and every object key becomes a segment of role ``field``, so that a secret in a tool description,
a JSON schema, ``metadata``, a document title or a key name is scanned like the prompt itself.
Strings that are base64 of UTF-8 text (Gemini ``inlineData`` text/plain, Bedrock text documents,
``data:text/plain;base64,...``) are scanned decoded and written back encoded; token-id arrays are
scanned decoded. :func:`write_back` applies rewritten segments of every form to the body.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable
from typing import Any

from tollhouse.exchange import Exchange, JsonPath, Role, Segment
from tollhouse.providers.base import ParseError
from tollhouse.providers.jsonbody import MAX_DEPTH, location, set_at

TokenDecoder = Callable[[list[int]], str]
"""Turns token ids into text with the model's encoding; raises ValueError on ids it lacks."""

BODY_FORMS = frozenset({"text", "key", "base64", "tokens"})
"""Segment forms that live in the JSON body (the others are in the URL or headers)."""

_BASE64_MIN = 16  # shorter strings are ordinary words far more often than encoded text
_BLOB_MIN = 256  # a longer base64 string that is not text is binary data (an image), not prose
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_TOKEN_KEYS = frozenset({"input", "prompt"})  # where OpenAI-style APIs accept token ids
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # control characters: binary data


def cover(
    exchange: Exchange,
    decode_tokens: TokenDecoder | None = None,
    role: str = Role.FIELD,
) -> None:
    """Add a segment for every string and key of ``exchange.body`` that no segment reads yet.

    Paths the adapter already turned into segments keep their role. Inside attachments
    (images, audio, documents) every string is read too: base64 that decodes to text is scanned,
    binary data is not (see :func:`string_segment`), whatever media type the client declared.
    Raises :class:`ParseError` for token ids the model's encoding does not have, or a body
    nested too deeply.
    """
    covered = {s.path for s in exchange.segments if s.form == "text"}
    _walk(exchange.body, (), role, exchange.segments, covered, decode_tokens, 0, [])


def every_string(
    value: Any,
    role: str,
    path: JsonPath = (),
    decode_tokens: TokenDecoder | None = None,
    blobs: list[JsonPath] | None = None,
) -> list[Segment]:
    """Segments for every string value and every object key inside ``value``. Long base64
    strings that decode to binary (images, audio, encrypted provider state) are no text to scan:
    their paths go to ``blobs``."""
    out: list[Segment] = []
    _walk(value, path, role, out, set(), decode_tokens, 0, blobs if blobs is not None else [])
    return out


def _walk(
    value: Any,
    path: JsonPath,
    role: str,
    out: list[Segment],
    covered: set[JsonPath],
    decode_tokens: TokenDecoder | None,
    depth: int,
    blobs: list[JsonPath],
) -> None:
    if depth > MAX_DEPTH:
        raise ParseError(f"{location(path)}: nested too deeply")
    if isinstance(value, str):
        if path not in covered:
            segment = string_segment(role, path, value)
            if segment is None:
                blobs.append(path)
            else:
                out.append(segment)
    elif isinstance(value, dict):
        for key, item in value.items():
            out.append(Segment(role, (*path, key), key, "key"))
            _walk(item, (*path, key), role, out, covered, decode_tokens, depth + 1, blobs)
    elif isinstance(value, list):
        if path not in covered and _token_ids(value, path):
            out.append(_tokens(role, path, value, decode_tokens))
            return
        for i, item in enumerate(value):
            _walk(item, (*path, i), role, out, covered, decode_tokens, depth + 1, blobs)


def string_segment(role: str, path: JsonPath, value: str) -> Segment | None:
    """A segment for a string value: decoded when it is base64 of text, as it is when it is
    plain text, None when it is a long base64 string of binary data."""
    payload = _base64_payload(value)
    if payload is None:
        return Segment(role, path, value)
    decoded = _decode_text(payload)
    if decoded is not None:
        return Segment(role, path, decoded, "base64")
    return None if len(payload) >= _BLOB_MIN else Segment(role, path, value)


def decode_base64_text(value: str) -> str | None:
    """The UTF-8 text that ``value`` (plain base64, base64url, or a ``data:...;base64,`` URL)
    encodes, or None when it is not base64 or does not decode to text."""
    payload = _base64_payload(value)
    return None if payload is None else _decode_text(payload)


def is_binary_blob(value: str) -> bool:
    """True for a long base64 string that decodes to bytes, not text (an image, audio)."""
    payload = _base64_payload(value)
    return payload is not None and len(payload) >= _BLOB_MIN and _decode_text(payload) is None


def looks_like_text(text: str) -> bool:
    """True unless more than 5% of ``text`` is control characters (binary data that happens to
    be valid UTF-8, such as silence in an audio file). Counted in C: texts can be megabytes."""
    return len(_CONTROL.sub("", text)) >= 0.95 * len(text)


def _base64_payload(value: str) -> str | None:
    """The base64 data of ``value`` (after a ``data:...;base64,`` prefix, line breaks removed)
    when it is long enough and uses only the base64 alphabets, else None."""
    data = value
    if value.startswith("data:") and ";base64," in value[:200]:
        data = value.split(",", 1)[1]
    data = data.replace("\n", "").replace("\r", "")
    return data if len(data) >= _BASE64_MIN and _BASE64.fullmatch(data) else None


def _decode_text(payload: str) -> str | None:
    altchars = b"-_" if "-" in payload or "_" in payload else None
    try:
        text = base64.b64decode(_pad(payload), altchars=altchars).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return text if text and looks_like_text(text) else None


def _pad(data: str) -> str:
    data = data.rstrip("=")
    return data + "=" * (-len(data) % 4)


def _token_ids(value: list[Any], path: JsonPath) -> bool:
    """An array of token ids where the API accepts them (``input``/``prompt``, or an array in
    one), rather than any list of numbers."""
    keys = [p for p in path if isinstance(p, str)]
    return (
        bool(value)
        and bool(keys)
        and keys[-1] in _TOKEN_KEYS
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


def _tokens(role: str, path: JsonPath, ids: list[int], decode: TokenDecoder | None) -> Segment:
    if decode is None:
        raise ParseError(f"{location(path)}: token ids cannot be read here; send text")
    try:
        return Segment(role, path, decode(ids), "tokens")
    except (ValueError, KeyError, OverflowError):
        raise ParseError(f"{location(path)}: not valid token ids for this model") from None


def write_back(body: Any, segments: Iterable[Segment]) -> None:
    """Write rewritten body segments into ``body``: values first, then keys from the deepest
    out, so that a renamed key never invalidates the path of a value beneath it."""
    todo = [s for s in segments if s.form in BODY_FORMS]
    for segment in todo:
        if segment.form == "text" or segment.form == "tokens":
            set_at(body, segment.path, segment.text)
        elif segment.form == "base64":
            set_at(body, segment.path, _encode_like(_get(body, segment.path), segment.text))
    for segment in sorted(
        (s for s in todo if s.form == "key"), key=lambda s: len(s.path), reverse=True
    ):
        _rename(_get(body, segment.path[:-1]), segment.path[-1], segment.text)


def _encode_like(original: Any, text: str) -> str:
    """``text`` base64-encoded the way ``original`` was (data URL prefix, url-safe alphabet)."""
    prefix, data = "", original if isinstance(original, str) else ""
    if data.startswith("data:") and "," in data:
        head, data = data.split(",", 1)
        prefix = head + ","
    urlsafe = "-" in data or "_" in data
    encoded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(text.encode())
    return prefix + encoded.decode("ascii")


def _get(body: Any, path: JsonPath) -> Any:
    for part in path:
        body = body[part]
    return body


def _rename(parent: dict[str, Any], old: Any, new: str) -> None:
    """Rename key ``old`` to ``new`` in place, keeping the order of the other keys."""
    if old not in parent or old == new:
        return
    items = list(parent.items())
    parent.clear()
    for key, value in items:
        parent[new if key == old else key] = value
