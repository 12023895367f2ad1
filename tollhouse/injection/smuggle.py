"""Smuggling: invisible characters and encoded payloads.

:func:`tollhouse.normalize.normalize` already strips invisible characters so that rules see
``ignore`` in ``ig\u200bnore``; here we count *which* ones were there, because some are common
in benign text (emoji variation selectors, the zero-width joiner inside emoji, left-to-right marks
in Arabic or Hebrew, zero-width spaces from copy-paste) and others are not (Unicode tag
characters, bidi overrides, zero-width characters inside a Latin word). Tag characters spell
ASCII invisibly (U+E0041 is an invisible ``A``), so their payload is decoded and re-checked.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

__all__ = ["Invisibles", "decode_base64", "decode_hex", "invisibles", "strip_smuggled"]

# U+1F3F4 (waving black flag) + tags + U+E007F (cancel tag) is a subdivision flag emoji, e.g.
# England: legitimate, so that sequence is removed before counting tags.
_FLAG_EMOJI = re.compile("\U0001f3f4[\U000e0020-\U000e007e]+\U000e007f")
_TAG = re.compile("[\U000e0000-\U000e007f]")
_TAG_PRINTABLE = re.compile("[\U000e0020-\U000e007e]+")
# Zero-width space, word joiner, invisible operators, mid-text BOM, Mongolian vowel separator.
_ZERO_WIDTH = re.compile("[\u200b\u2060-\u2064\ufeff\u180e]")
# Any zero-width or joiner character wedged between two Latin letters or digits: "ig\u200bnore".
_IN_WORD = re.compile("[A-Za-z0-9][\u200b-\u200d\u2060-\u2064\ufeff\u00ad]+[A-Za-z0-9]")
# The same characters alone, between letters or digits, for removal ("i\u200dg\u200dn" too).
_IN_WORD_RUN = re.compile(
    "(?<=[A-Za-z0-9])[\u200b-\u200d\u2060-\u2064\ufeff\u00ad]+(?=[A-Za-z0-9])"
)
# Embeddings, overrides and isolates (Trojan Source). LRM/RLM marks are normal in RTL text.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
_PRINTABLE_MIN = 0.95


@dataclass(slots=True)
class Invisibles:
    """What invisible characters a text held, beyond the benign ones."""

    tags: int = 0
    tag_payload: str = ""  # the ASCII that tag characters spelled, to be re-checked
    zero_width: int = 0
    in_word: int = 0
    bidi: int = 0


def invisibles(raw: str) -> Invisibles:
    """Count suspicious invisible characters in ``raw`` (call only when some were stripped)."""
    out = Invisibles()
    text = _FLAG_EMOJI.sub("", raw) if "\U0001f3f4" in raw else raw
    tags = _TAG.findall(text)
    if tags:
        out.tags = len(tags)
        out.tag_payload = " ".join(
            "".join(chr(ord(c) - 0xE0000) for c in m.group()) for m in _TAG_PRINTABLE.finditer(text)
        )
    out.zero_width = len(_ZERO_WIDTH.findall(text))
    out.in_word = len(_IN_WORD.findall(text))
    out.bidi = len(_BIDI.findall(text))
    return out


def strip_smuggled(text: str) -> tuple[str, int]:
    """``text`` without the invisible characters that can only smuggle: Unicode tag characters
    (outside subdivision-flag emoji), bidi embeddings, overrides and isolates, zero-width spaces
    and word joiners, and zero-width or joiner characters wedged inside a Latin word. Joiners in
    emoji and scripts that need them, and LRM/RLM marks, stay. Returns the text and how many
    characters were removed."""
    if text.isascii():
        return text, 0
    pieces, last = [], 0
    for flag in _FLAG_EMOJI.finditer(text):  # a subdivision flag is a legitimate tag sequence
        pieces += [_strip(text[last : flag.start()]), flag.group()]
        last = flag.end()
    pieces.append(_strip(text[last:]))
    out = "".join(pieces)
    return out, len(text) - len(out)


def _strip(text: str) -> str:
    text = _BIDI.sub("", _TAG.sub("", text))
    text = _ZERO_WIDTH.sub("", text)
    return _IN_WORD_RUN.sub("", text)


def _as_text(data: bytes) -> str | None:
    """Decoded bytes as text when they look like natural language, else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text or " " not in text.strip():
        return None  # an instruction has words; keys, hashes and ids do not
    printable = sum(1 for c in text if c.isprintable() or c in "\n\r\t")
    return text if printable / len(text) >= _PRINTABLE_MIN else None


def decode_base64(token: str) -> str | None:
    """Decode a standard or URL-safe base64 token into text, or None."""
    body = token.rstrip("=")
    if len(body) % 4 == 1:
        return None
    padded = body + "=" * (-len(body) % 4)
    try:
        if "-" in padded or "_" in padded:
            data = base64.urlsafe_b64decode(padded)
        else:
            data = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _as_text(data)


def decode_hex(token: str) -> str | None:
    """Decode ``\\x41\\x42``, ``41 42`` or ``4142`` hex into text, or None."""
    digits = re.sub(r"\\x|[\s:]", "", token)
    if len(digits) % 2:
        return None
    try:
        return _as_text(bytes.fromhex(digits))
    except ValueError:
        return None
