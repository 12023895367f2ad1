"""An incremental Server-Sent-Events parser that keeps each event's exact bytes.

Stream readers feed it chunks as they pass and get back complete events. Each event carries the
raw bytes it was made of, so that a reader can drop one event and forward every other byte of the
stream unchanged. Every byte fed belongs to exactly one returned block: blocks that carry no data
(comments, keep-alives, stray blank lines) come back too, with ``data == ""``, so that joining the
``raw`` of everything returned gives back the stream byte for byte.

Follows the WHATWG parsing rules: lines end in CRLF, LF or CR; ``:`` starts a comment; one space
after the field's colon is dropped; ``data`` lines join with ``\\n``; a blank line ends the event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EOL = re.compile(rb"\r\n?|\n")
_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class SseEvent:
    """One block of the stream. ``event`` is None when the block named no event type."""

    event: str | None
    data: str
    raw: bytes
    id: str | None = None


class SseParser:
    """Feed bytes, get complete events. Holds only the bytes of the event not yet complete."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scan = 0  # offset in _buf of the first line not yet parsed
        self._first = True
        self._reset()

    def _reset(self) -> None:
        self._data: list[str] = []
        self._has_data = False
        self._event: str | None = None
        self._id: str | None = None

    @property
    def pending_size(self) -> int:
        """Bytes held for the incomplete event (a reader gives up parsing past its limit)."""
        return len(self._buf)

    def take_pending(self) -> bytes:
        """Hand over the held bytes and forget them: the parser starts afresh."""
        out = bytes(self._buf)
        self._buf.clear()
        self._scan = 0
        self._reset()
        return out

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """Parse ``chunk``; return the events it completed, in order."""
        self._buf += chunk
        return self._drain(final=False)

    def close(self) -> list[SseEvent]:
        """The stream ended: return the rest, including an event that lacked its blank line."""
        events = self._drain(final=True)
        if self._buf:
            tail = self._buf
            if self._scan < len(tail):  # a last line with no line ending
                self._line(bytes(tail[self._scan :]))
            events.append(self._emit(bytes(tail)))
            self._buf = bytearray()
            self._scan = 0
        return events

    def _drain(self, final: bool) -> list[SseEvent]:
        buf = self._buf
        end = len(buf)
        pos = self._scan
        start = 0  # where the current block begins
        events: list[SseEvent] = []
        while pos < end:
            m = _EOL.search(buf, pos)
            if m is None:
                break
            if m.end() == end and m.group() == b"\r" and not final:
                break  # a CR at the end may be the first half of CRLF: wait for the next byte
            if m.start() == pos:  # blank line: the block is complete
                pos = m.end()
                events.append(self._emit(bytes(buf[start:pos])))
                start = pos
                continue
            self._line(bytes(buf[pos : m.start()]))
            pos = m.end()
        if start:
            del buf[:start]
        self._scan = pos - start
        return events

    def _line(self, line: bytes) -> None:
        if self._first:
            self._first = False
            if line.startswith(_BOM):
                line = line[len(_BOM) :]
        if line[:1] == b":":
            return  # comment
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value.decode("utf-8", "replace"))
            self._has_data = True
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id" and b"\0" not in value:
            self._id = value.decode("utf-8", "replace")

    def _emit(self, raw: bytes) -> SseEvent:
        data = "\n".join(self._data) if self._has_data else ""
        event = SseEvent(self._event, data, raw, self._id)
        self._reset()
        return event
