"""An incremental reader for one JSON array whose elements arrive over time.

Gemini's ``streamGenerateContent`` without ``alt=sse`` answers ``[{...},\\r\\n{...}]`` in chunks.
The reader scans only structural bytes (safe in UTF-8: they never occur inside a multi-byte
character) and parses each top-level object once it is complete, holding only that object's bytes.
"""

from __future__ import annotations

import re
from typing import Any

from tollhouse.providers.jsonbody import try_load

_TOKENS = re.compile(rb'[\[\]{}"\\]')


class JsonArrayParser:
    """Feed bytes of ``[obj, obj, ...]``; get each object, parsed, once it is complete."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._depth = 0
        self._in_string = False
        self._escaped_at = -1  # offset of a byte escaped by a backslash before it
        self._start: int | None = None  # offset of the current element's first byte

    @property
    def pending_size(self) -> int:
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[Any]:
        """Parse ``chunk``; return the top-level elements it completed (non-JSON ones as None)."""
        buf = self._buf
        pos = len(buf)
        buf += chunk
        out: list[Any] = []
        for m in _TOKENS.finditer(buf, pos):
            i = m.start()
            if i == self._escaped_at:
                continue
            c = buf[i]
            if self._in_string:
                if c == 0x22:  # "
                    self._in_string = False
                elif c == 0x5C:  # backslash
                    self._escaped_at = i + 1
            elif c == 0x22:
                self._in_string = True
            elif c in (0x7B, 0x5B):  # { [
                self._depth += 1
                if self._depth == 2:
                    self._start = i
            elif self._depth > 0:  # } ]
                self._depth -= 1
                if self._depth == 1 and self._start is not None:
                    out.append(try_load(bytes(buf[self._start : i + 1])))
                    self._start = None
        keep = self._start if self._start is not None else len(buf)
        if keep:
            del buf[:keep]
            self._escaped_at -= keep
            if self._start is not None:
                self._start = 0
        return out
