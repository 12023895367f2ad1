"""Put redacted values back into what the model answers, also across streamed chunks.

With ``restore: true`` the provider only ever sees ``[EMAIL_1]``; when the model's answer
mentions ``[EMAIL_1]``, the user gets their own address back. In a stream a placeholder can be
split across chunks (``"... [EMA"`` + ``"IL_1] ..."``), so :meth:`Restorer.feed` holds back only
a tail that could still become a placeholder and releases everything else at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["Restorer"]

_PLACEHOLDER = re.compile(r"\[[A-Z][A-Z0-9_]*_\d+\]")
_PREFIX_CHARS = re.compile(r"[A-Z0-9_]*")


class Restorer:
    """Swaps placeholders from a :class:`~tollhouse.dlp.scanner.DlpResult` restore map back."""

    def __init__(self, restore_map: Mapping[str, str]) -> None:
        self.restore_map = dict(restore_map)
        self._max = max((len(p) for p in self.restore_map), default=0)
        self._held = ""

    def restore(self, text: str) -> str:
        """Replace every known placeholder in a complete text."""
        if not self.restore_map or "[" not in text:
            return text
        return _PLACEHOLDER.sub(lambda m: self.restore_map.get(m.group(), m.group()), text)

    def feed(self, chunk: str) -> str:
        """Restore a streamed chunk; returns what can be sent now (may hold back a short tail)."""
        if not self.restore_map:
            return chunk
        text = self._held + chunk
        cut = self._hold_from(text)
        self._held = text[cut:]
        return self.restore(text[:cut])

    def flush(self) -> str:
        """End of stream: release whatever is still held back."""
        text, self._held = self._held, ""
        return self.restore(text)

    def _hold_from(self, text: str) -> int:
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
