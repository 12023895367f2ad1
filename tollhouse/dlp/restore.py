"""Put redacted values back into what the model answers, also across streamed chunks.

With ``restore: true`` the provider only ever sees ``[EMAIL_1]``; when the model's answer
mentions ``[EMAIL_1]``, the user gets their own address back. In a stream a placeholder can be
split across chunks (``"... [EMA"`` + ``"IL_1] ..."``), so :meth:`Restorer.feed` holds back only
a tail that could still become a placeholder and releases everything else at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping

__all__ = ["Restorer", "SseRestorer"]

_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z0-9_]*_\d+\]")
_PREFIX_CHARS = re.compile(r"[A-Z0-9_]*")


class Restorer:
    """Swaps placeholders from a :class:`~tollhouse.dlp.scanner.DlpResult` restore map back."""

    def __init__(
        self, restore_map: Mapping[str, str], escape: Callable[[str], str] | None = None
    ) -> None:
        """``escape`` turns an original value into what the text needs (e.g. JSON string
        escaping); it runs only for placeholders actually found, not for the whole map."""
        self.restore_map = dict(restore_map)
        self._escape = escape
        self._max = max(map(len, self.restore_map), default=0)
        self._held = ""

    def restore(self, text: str) -> str:
        """Replace every known placeholder in a complete text."""
        if not self.restore_map or "[" not in text:
            return text
        return _PLACEHOLDER.sub(self._value, text)

    def _value(self, match: re.Match[str]) -> str:
        value = self.restore_map.get(match.group())
        if value is None:
            return match.group()
        return self._escape(value) if self._escape else value

    def feed(self, chunk: str) -> str:
        """Restore a streamed chunk; returns what can be sent now (may hold back a short tail)."""
        if not self.restore_map:
            return chunk
        text = self._held + chunk
        cut = self.hold_from(text)
        self._held = text[cut:]
        return self.restore(text[:cut])

    def flush(self) -> str:
        """End of stream: release whatever is still held back."""
        text, self._held = self._held, ""
        return self.restore(text)

    def hold_from(self, text: str) -> int:
        """Index from which ``text`` might be the start of a placeholder not yet complete."""
        start = text.rfind("[", max(0, len(text) - self._max))
        if start < 0:
            return len(text)
        tail = text[start + 1 :]
        # Still a possible prefix: "[", "[EMA", "[EMAIL_", "[EMAIL_1" (no closing bracket yet).
        if _PREFIX_CHARS.fullmatch(tail) and any(
            p.startswith(text[start:]) for p in self.restore_map
        ):
            return start
        return len(text)


class SseRestorer:
    """Restores placeholders in a server-sent-event stream whose events carry JSON.

    Models write a placeholder a token at a time, so ``[EMAIL_1]`` usually arrives split over
    several events, each a separate JSON string (``"[EMA"`` then ``"IL_1]"``): restoring the
    raw bytes would never see it whole. Here each event's JSON is parsed; a string that ends in
    a possible placeholder start has that tail cut and carried into the next event's string at
    the same JSON path, where the placeholder completes and is restored. An event that does
    not continue that string (the end of a message, ``[DONE]``) first gets the carried tail
    back in an event of its own, a copy of the one it was cut from, so no text is ever lost.
    Events that need no change pass byte for byte.
    """

    def __init__(self, restore_map: Mapping[str, str]) -> None:
        self._restorer = Restorer(restore_map)
        self._buffer = ""
        # JSON path -> (held tail, the event it came from as (other lines, parsed data))
        self._held: dict[tuple[object, ...], tuple[str, list[str], object]] = {}

    def feed(self, chunk: str) -> str:
        """Complete events of ``chunk`` (plus what was buffered), restored; holds the rest."""
        self._buffer += chunk
        out: list[str] = []
        while True:
            end, sep = _event_end(self._buffer)
            if end < 0:
                break
            event, self._buffer = self._buffer[:end], self._buffer[end + len(sep) :]
            out.append(self._event(event) + sep)
        return "".join(out)

    def flush(self) -> str:
        """End of stream: the last (unterminated) event and anything still held."""
        rest, self._buffer = self._buffer, ""
        out = self._event(rest) + "\n\n" if rest.strip() else rest
        return out + self._release(set())

    def _event(self, event: str) -> str:
        lines = event.split("\n")
        data_lines = [i for i, line in enumerate(lines) if line.startswith("data:")]
        data: object = None
        if len(data_lines) == 1:
            raw = lines[data_lines[0]][5:].strip()
            if raw.startswith(("{", "[")):
                try:
                    data = json.loads(raw)
                except ValueError:
                    data = None
        if data is None:
            return self._release(set()) + event
        others = [line for i, line in enumerate(lines) if i != data_lines[0]]
        strings = dict(_strings(data, ()))
        prefix = self._release(set(strings))
        changed = False
        for path, value in strings.items():
            carried = self._held.pop(path, None)
            text = (carried[0] if carried else "") + value
            cut = self._restorer.hold_from(text) if self._restorer.restore_map else len(text)
            new = self._restorer.restore(text[:cut])
            if cut < len(text):
                self._held[path] = (text[cut:], others, data)
            if new != value:
                _set(data, path, new)
                changed = True
        if not changed:
            return prefix + event
        return prefix + _render(others, data)

    def _release(self, continuing: set[tuple[object, ...]]) -> str:
        """Events that give back held tails whose string this event does not continue."""
        out = []
        for path in [p for p in self._held if p not in continuing]:
            tail, others, data = self._held.pop(path)
            copy = json.loads(json.dumps(data))
            _set(copy, path, self._restorer.restore(tail))
            out.append(_render(others, copy) + "\n\n")
        return "".join(out)


def _event_end(buffer: str) -> tuple[int, str]:
    """Where the first complete event ends and its separator, or (-1, "")."""
    found = [(i, sep) for sep in ("\n\n", "\r\n\r\n") if (i := buffer.find(sep)) >= 0]
    return min(found) if found else (-1, "")


def _strings(data: object, path: tuple[object, ...]) -> Iterator[tuple[tuple[object, ...], str]]:
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for k, v in data.items():
            yield from _strings(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _strings(v, (*path, i))


def _set(data: object, path: tuple[object, ...], value: str) -> None:
    for key in path[:-1]:
        data = data[key]  # type: ignore[index]
    data[path[-1]] = value  # type: ignore[index]


def _render(others: list[str], data: object) -> str:
    line = "data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    kept = [x for x in others if x.strip()]
    return "\n".join([*kept, line])
