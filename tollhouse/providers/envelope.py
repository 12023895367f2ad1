"""The request outside its body: path, query string and headers, read and written as segments.

A provider reads more than the body: path segments (file and thread ids), the query string, and
headers, where a careless client (or an attacker) can put a secret as easily as in the prompt.
:func:`envelope_segments` turns them into segments of role ``field``; after the stages have had
their say, :func:`apply_envelope` writes rewritten ones back. Credential headers and query keys
(the provider key, cookies, SigV4) are left to the identity stage, which fingerprints them: they
are never scanned, so that a provider key never turns into a DLP finding of its own.

:func:`normalize_path` is the one place that decides whether a path is unambiguous.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode

from tollhouse.exchange import Exchange, Role, Segment

CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "x-amz-security-token",
        "x-amz-date",
        "x-amz-content-sha256",
        "x-tollhouse-app",
    }
)
"""Headers that carry the caller's credentials: fingerprinted by identity, never scanned."""

CREDENTIAL_PARAMS = frozenset({"key", "api-key", "api_key", "x-amz-signature", "x-amz-credential"})
"""Query keys that carry a credential (Gemini's ``?key=``, presigned SigV4)."""

# What may appear in a path once decoded: no control characters, no backslash, no second layer
# of percent-encoding, no dot segments, no empty segments. (An encoded slash stays: Bedrock's SDKs
# send model ARNs as one encoded path segment, and servers do not split on it either.)
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")
_ENCODED_SEPARATOR = re.compile(r"%(?:5c|25|2e|00)", re.IGNORECASE)


class AmbiguousPath(ValueError):
    """A path that servers may read differently from the gateway. The message names the rule,
    never the path."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """The parts of a request outside its body, as the gateway will send them."""

    path: str  # path and query string
    headers: list[tuple[str, str]]


def normalize_path(raw: str) -> str:
    """The decoded path (no query) of ``raw``, or :class:`AmbiguousPath`.

    A path is ambiguous when servers could route or read it differently from the gateway:
    encoded dots, backslashes or percent signs; dot segments; repeated slashes; control
    characters; anything but an absolute path.
    """
    path = raw.split("?", 1)[0]
    if not path.startswith("/"):
        raise AmbiguousPath("the path must start with /")
    if _ENCODED_SEPARATOR.search(path):
        raise AmbiguousPath("the path encodes a dot, backslash, percent sign or NUL")
    try:
        decoded = unquote(path, errors="strict")
    except UnicodeDecodeError:
        raise AmbiguousPath("the path is not valid UTF-8 once decoded") from None
    if _CONTROL.search(decoded):
        raise AmbiguousPath("the path holds control characters or a backslash")
    if "//" in path:
        raise AmbiguousPath("the path repeats a slash")
    if any(part in (".", "..") for part in path.split("/")):
        raise AmbiguousPath("the path holds a dot segment")
    return decoded


def envelope_segments(
    path: str, headers: Sequence[tuple[str, str]], credentials: frozenset[str] = frozenset()
) -> list[Segment]:
    """Segments for the decoded path, every query key and value, and every header name and
    value except credentials (:data:`CREDENTIAL_HEADERS` and ``credentials``, e.g. ``cookie``
    for a consumer app's browser session). Paths: ``()`` for the path, ``(i, 0|1)`` for query
    pair ``i``'s key or value, ``(i, 0|1)`` for header ``i``'s name or value."""
    target, _, query = path.partition("?")
    out = [Segment(Role.FIELD, (), unquote(target), "url")]
    for i, (key, value) in enumerate(parse_qsl(query, keep_blank_values=True)):
        out.append(Segment(Role.FIELD, (i, 0), key, "query"))
        if key.lower() not in CREDENTIAL_PARAMS:
            out.append(Segment(Role.FIELD, (i, 1), value, "query"))
    for i, (name, value) in enumerate(headers):
        out.append(Segment(Role.FIELD, (i, 0), name, "header"))
        if name.lower() not in CREDENTIAL_HEADERS and name.lower() not in credentials:
            out.append(Segment(Role.FIELD, (i, 1), value, "header"))
    return out


def apply_envelope(
    exchange: Exchange, path: str, headers: Sequence[tuple[str, str]]
) -> Envelope | None:
    """The path and headers with rewritten envelope segments written in, or None when no
    envelope segment changed. ``path`` and ``headers`` are those the segments were read from."""
    changed = [exchange.segments[i] for i in sorted(exchange.changed_segments)]
    changed = [s for s in changed if s.form in ("url", "query", "header")]
    if not changed:
        return None
    target, _, query = path.partition("?")
    pairs = [list(p) for p in parse_qsl(query, keep_blank_values=True)]
    fields = [list(h) for h in headers]
    for segment in changed:
        if segment.form == "url":
            target = quote(segment.text, safe="/:@!$&'()*+,;=-._~")
        elif segment.form == "query":
            pairs[int(segment.path[0])][int(segment.path[1])] = segment.text
        else:
            fields[int(segment.path[0])][int(segment.path[1])] = _header_safe(segment.text)
    new_query = urlencode([(k, v) for k, v in pairs], quote_via=quote) if pairs else ""
    return Envelope(
        target + (f"?{new_query}" if new_query or "?" in path else ""),
        [(name, value) for name, value in fields],
    )


def _header_safe(text: str) -> str:
    """A replacement never adds a line break to a header."""
    return re.sub(r"[\r\n]", " ", text)
