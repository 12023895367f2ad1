"""Helpers shared by the JSON adapters: strict field access with path-naming errors, write-back.

Every error names the field as a JSON path (``$.messages[2].content``) and the JSON *type* it found,
never the value, so that a ParseError can be logged without leaking prompt text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from tollhouse.exchange import Attachment, JsonPath, Segment, Usage
from tollhouse.providers.base import ParseError

MAX_DEPTH = 64  # tool arguments are client-supplied objects: bound the recursion
TEXT_CAP = 1 << 20  # characters of output text a summary keeps (1 MiB)


def location(path: JsonPath) -> str:
    """``("messages", 0, "content")`` as ``$.messages[0].content``."""
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def type_name(value: object) -> str:
    """The JSON name of a value's type, for error messages (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def fail(path: JsonPath, expected: str, value: object) -> ParseError:
    """A ParseError for the field at ``path``: expected one type, found another."""
    return ParseError(f"{location(path)}: expected {expected}, got {type_name(value)}")


def load_object(body: bytes) -> dict[str, Any]:
    """Parse a request body that must be a JSON object, strictly (see :func:`strict_loads`)."""
    if not body.strip():
        raise ParseError("$: empty body")
    value = strict_loads(body)
    if not isinstance(value, dict):
        raise fail((), "an object", value)
    return value


def strict_loads(data: bytes | str) -> Any:
    """Parse a request's JSON the one way every reader agrees on. A duplicate key at any depth
    is refused: the gateway would scan one copy while the provider may read the other. So are
    ``NaN`` and ``Infinity``, which are not JSON. Errors name a location, never a key or value."""
    found = False

    def unique(pairs: list[tuple[str, Any]]) -> Any:
        nonlocal found
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                found = True  # first repeat of this key: its 2nd occurrence
                return _Duplicate(list(out).index(key) + 1)
            out[key] = value
        return out

    try:
        value = json.loads(data, object_pairs_hook=unique, parse_constant=_no_constant)
    except json.JSONDecodeError as e:  # its message gives a position, never the text
        raise ParseError(f"$: body is not valid JSON (line {e.lineno} column {e.colno})") from None
    except (UnicodeDecodeError, RecursionError):
        raise ParseError("$: body is not valid UTF-8 JSON") from None
    if found:
        path, dup = _first_duplicate(value)
        raise ParseError(
            f"{location(path)}: duplicate key (2nd occurrence of the {_ordinal(dup.position)} key)"
        )
    return value


class _Duplicate:
    """Stands in for an object with a repeated key while the document is parsed."""

    __slots__ = ("position",)

    def __init__(self, position: int) -> None:
        self.position = position  # of the repeated key among the object's distinct keys


def _no_constant(name: str) -> Any:
    raise ParseError("$: body is not valid JSON (NaN or Infinity)")


def _first_duplicate(value: Any) -> tuple[JsonPath, _Duplicate]:
    """The first repeated-key object in document order, and its path for an error message
    (iterative: the document may be deep). Keys are client text: a key that does not look like
    an API field name (``messages``, ``inlineData``) is shown by its position, ``{key 3}``, so a
    key holding a secret or a name never reaches an error message or a log."""
    stack: list[tuple[JsonPath, Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, _Duplicate):
            return path, item
        if isinstance(item, dict):
            named = [
                ((*path, k if _FIELD_NAME.fullmatch(k) else f"{{key {n}}}"), v)
                for n, (k, v) in enumerate(item.items(), 1)
            ]
            stack.extend(reversed(named))
        elif isinstance(item, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(item))))
    raise AssertionError("a duplicate was found while parsing")  # pragma: no cover


_FIELD_NAME = re.compile(r"[a-z][A-Za-z_]{0,31}")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def try_load(body: bytes | str) -> Any:
    """Parse JSON from a response, or None: responses are read leniently, never blocked."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def dump(body: Any) -> bytes:
    """Serialize a changed body the one way every adapter does."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def obj(value: object, path: JsonPath) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(path, "an object", value)
    return value


def arr(value: object, path: JsonPath) -> list[Any]:
    if not isinstance(value, list):
        raise fail(path, "an array", value)
    return value


def opt_str(parent: Mapping[str, Any], key: str, path: JsonPath) -> str | None:
    """``parent[key]`` as a string, None if absent or null; anything else is a ParseError."""
    value = parent.get(key)
    if value is None or isinstance(value, str):
        return value
    raise fail((*path, key), "a string", value)


def opt_int(parent: Mapping[str, Any], key: str, path: JsonPath) -> int | None:
    value = parent.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail((*path, key), "an integer", value)
    return value


def opt_bool(parent: Mapping[str, Any], key: str, path: JsonPath) -> bool:
    value = parent.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise fail((*path, key), "a boolean", value)
    return value


def first_key(parent: Mapping[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` present in ``parent`` (Google accepts camelCase and snake_case)."""
    for key in keys:
        if key in parent:
            return key
    return None


def set_at(body: Any, path: JsonPath, value: Any) -> None:
    """Write ``value`` at ``path`` inside ``body``; the path came from parsing that same body."""
    target = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


def string_leaves(
    value: Any, path: JsonPath, role: str, out: list[Segment], depth: int = 0
) -> None:
    """Every string inside a JSON value (tool arguments, tool results) as a segment of ``role``."""
    if depth > MAX_DEPTH:
        raise ParseError(f"{location(path)}: nested too deeply")
    if isinstance(value, str):
        out.append(Segment(role, path, value))
    elif isinstance(value, dict):
        for key, item in value.items():
            string_leaves(item, (*path, key), role, out, depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            string_leaves(item, (*path, i), role, out, depth + 1)


def data_url_type(url: object) -> str | None:
    """The media type of a ``data:image/png;base64,...`` URL, else None."""
    if isinstance(url, str) and url.startswith("data:"):
        head = url[5 : url.find(",")] if "," in url else url[5:]
        media = head.split(";", 1)[0]
        return media or None
    return None


class Collected:
    """Segments and attachments as a parser finds them, in body order."""

    __slots__ = ("attachments", "segments")

    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self.attachments: list[Attachment] = []

    def text(self, role: str, path: JsonPath, value: object) -> None:
        """Add a required string field as a segment."""
        if not isinstance(value, str):
            raise fail(path, "a string", value)
        self.segments.append(Segment(role, path, value))

    def maybe_text(self, role: str, parent: Mapping[str, Any], key: str, path: JsonPath) -> None:
        """Add ``parent[key]`` as a segment if present and not null."""
        text = opt_str(parent, key, path)
        if text is not None:
            self.segments.append(Segment(role, (*path, key), text))

    def leaves(self, role: str, path: JsonPath, value: Any) -> None:
        string_leaves(value, path, role, self.segments)

    def attach(self, kind: str, path: JsonPath, media_type: object = None) -> None:
        media = media_type if isinstance(media_type, str) else None
        self.attachments.append(Attachment(kind, path, media))


class TextCollector:
    """Output text of a response, capped so that a huge stream cannot grow memory without bound."""

    __slots__ = ("_parts", "_size", "truncated")

    def __init__(self, cap: int = TEXT_CAP) -> None:
        self._parts: list[str] = []
        self._size = cap
        self.truncated = False

    def add(self, text: object) -> None:
        if not isinstance(text, str) or not text:
            return
        if len(text) > self._size:
            text = text[: self._size]
            self.truncated = True
        self._size -= len(text)
        if text:
            self._parts.append(text)

    @property
    def value(self) -> str:
        if len(self._parts) > 1:  # join once, keep one part
            self._parts[:] = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""


def as_int(value: object) -> int:
    """A usage count from a response: non-integers count as zero (responses are never rejected)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def dig(value: Any, *keys: str | int) -> Any:
    """``value[k1][k2]...`` or None if any step is missing or of the wrong type."""
    for key in keys:
        if isinstance(key, str) and isinstance(value, dict):
            value = value.get(key)
        elif isinstance(key, int) and isinstance(value, list) and -len(value) <= key < len(value):
            value = value[key]
        else:
            return None
    return value


PartParser = Callable[[Collected, str, Any, JsonPath], None]
"""A function that reads one content part: (collected, role, part, path)."""


def usage_with_cache(uncached_in: object, out: object, read: object, write: object) -> Usage:
    """A usage block whose input count leaves out cache reads and writes (Anthropic, Bedrock):
    they are added in, so that ``Usage.input_tokens`` counts every input token."""
    cache_read, cache_write = as_int(read), as_int(write)
    return Usage(
        input_tokens=as_int(uncached_in) + cache_read + cache_write,
        output_tokens=as_int(out),
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )
