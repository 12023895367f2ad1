"""A normalized view of text for detectors, with a map back to the original offsets.

Attackers hide PII and instructions from pattern matchers with look-alike characters
(full-width digits, ligatures), invisible characters inside words (zero-width spaces, bidi
controls, Unicode tag characters) and exotic dashes and spaces. Detectors scan
``normalize(text).text`` and report spans in it; :meth:`Normalized.span_to_original` turns such a
span into the exact span of the original text, so a rewrite replaces the right characters.

Speed matters: this runs on every prompt. ASCII text (the common case) costs one ``isascii``
call; otherwise only the non-ASCII runs that actually change are walked character by character.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = ["Normalized", "is_invisible", "normalize"]

# Characters that render as nothing (or only steer rendering) and are removed before scanning:
# zero-width space/joiners, bidi controls and isolates, word joiner and invisible operators,
# BOM, soft hyphen, Unicode tags U+E0000..E007F, variation selectors, the combining grapheme
# joiner, interlinear annotation marks, and the Hangul/Mongolian/Khmer fillers that show blank.
_INVISIBLE_RE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
    "\U0001d173-\U0001d17a\U000e0000-\U000e007f"
    "\U000e0100-\U000e01ef]"
)
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
_ASCII_CHAR = re.compile(r"[\x00-\x7f]")
_BLOCK = 2048  # characters per block checked with one C-speed is_normalized call

# After NFKC, dashes and minus signs that still are not "-" (NFKC keeps U+2010..U+2015, U+2212)
# are folded to ASCII so that a card number written with figure dashes still matches. One char
# to one char, so folding never moves an offset.
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\ufe58\ufe63\uff0d"
_FOLD = str.maketrans(dict.fromkeys(_DASHES, "-"))

_ODD_RE = re.compile(_INVISIBLE_RE.pattern[:-1] + _DASHES + "]")  # needs more than NFKC


def _simple_table() -> dict[int, str]:
    """Characters NFKC turns into one ASCII character on their own, plus the folded dashes.

    Full-width forms (U+FF01..FF5E, the punctuation of CJK text) and the ideographic space
    decompose to exactly one ASCII character, which never composes with a neighbour, so
    replacing them one for one gives the text NFKC would (same offsets, no walk needed).
    """
    table = {ord(d): "-" for d in _DASHES}
    for cp in [0x3000, *range(0xFF01, 0xFF5F)]:
        target = unicodedata.normalize("NFKD", chr(cp))
        if len(target) == 1 and target.isascii():
            table[cp] = target
    return table


_SIMPLE = _simple_table()
_SIMPLE_RE = re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(_SIMPLE)) + "]")


def _fold_simple(text: str) -> str:
    """``text.translate(_SIMPLE)``, fast: one ``str.replace`` per distinct character present.

    ``str.translate`` looks each character up in a dict (~150 ns a char for non-ASCII text);
    a CJK prompt holds a handful of distinct full-width characters, each replaced at C speed.
    """
    m = _SIMPLE_RE.search(text)
    while m is not None:
        ch = m.group()
        text = text.replace(ch, _SIMPLE[ord(ch)])  # one for one: offsets stay valid
        m = _SIMPLE_RE.search(text, m.start())
    return text


def is_invisible(ch: str) -> bool:
    """True for a character that :func:`normalize` strips as invisible."""
    return _INVISIBLE_RE.match(ch) is not None


@dataclass(slots=True)
class Normalized:
    """Normalized text plus the map from its offsets to the original text's offsets.

    The map is piecewise: each piece covers a run of normalized characters. An *identity* piece
    maps character for character; any other piece (a ligature, a composed accent) maps every
    character in it to the whole original span that produced it.
    """

    text: str
    original: str
    removed_invisible: int = 0
    # Parallel lists, one entry per piece, sorted by normalized start. Empty means identity.
    _norm_starts: list[int] = field(default_factory=list, repr=False)
    _orig_starts: list[int] = field(default_factory=list, repr=False)
    _orig_ends: list[int] = field(default_factory=list, repr=False)
    _identity: list[bool] = field(default_factory=list, repr=False)

    @property
    def changed(self) -> bool:
        """True when the normalized text differs from the original."""
        return self.text is not self.original and self.text != self.original

    def span_to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map the span ``[start, end)`` of :attr:`text` to the span of :attr:`original`.

        The result covers every original character that produced a character of the span,
        including invisible characters stripped inside it (not those at its edges).
        """
        if not 0 <= start <= end <= len(self.text):
            raise ValueError(f"span {start}:{end} outside normalized text of {len(self.text)}")
        if not self._norm_starts:
            return start, end
        if start == end:
            pos = self._orig_pos(start) if start < len(self.text) else len(self.original)
            return pos, pos
        return self._orig_pos(start), self._orig_end(end - 1)

    def _orig_pos(self, i: int) -> int:
        k = bisect_right(self._norm_starts, i) - 1
        if self._identity[k]:
            return self._orig_starts[k] + (i - self._norm_starts[k])
        return self._orig_starts[k]

    def _orig_end(self, i: int) -> int:
        k = bisect_right(self._norm_starts, i) - 1
        if self._identity[k]:
            return self._orig_starts[k] + (i - self._norm_starts[k]) + 1
        return self._orig_ends[k]


class _Builder:
    """Accumulates output pieces, merging adjacent identity pieces."""

    __slots__ = ("identity", "norm_pos", "norm_starts", "orig_ends", "orig_starts", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.norm_pos = 0
        self.norm_starts: list[int] = []
        self.orig_starts: list[int] = []
        self.orig_ends: list[int] = []
        self.identity: list[bool] = []

    def add(self, out: str, orig_start: int, orig_end: int, identity: bool) -> None:
        if not out:
            return
        if identity and self.identity and self.identity[-1] and self.orig_ends[-1] == orig_start:
            self.orig_ends[-1] = orig_end  # contiguous identity run: extend it
        else:
            self.norm_starts.append(self.norm_pos)
            self.orig_starts.append(orig_start)
            self.orig_ends.append(orig_end)
            self.identity.append(identity)
        self.parts.append(out)
        self.norm_pos += len(out)


def _nfkc(s: str) -> str:
    return unicodedata.normalize("NFKC", s).translate(_FOLD)


_STARTER, _COMBINING, _INVISIBLE = 0, 1, 2


@lru_cache(maxsize=8192)
def _char_info(ch: str) -> tuple[int, str]:
    """Kind of ``ch`` and its own normalized form, cached: evasive text repeats few characters."""
    if _INVISIBLE_RE.match(ch):
        return _INVISIBLE, ""
    if unicodedata.combining(ch):
        return _COMBINING, _nfkc(ch)
    return _STARTER, _nfkc(ch)


def _walk_chunk(chunk: str, base: int, out: _Builder) -> int:
    """Normalize one chunk character cluster by cluster; return invisible characters removed.

    A cluster is a starter plus the combining marks after it, so "e" + U+0301 maps as a unit.
    If cluster-wise output differs from normalizing the whole chunk (Hangul jamo composing
    across starters), the chunk maps as one piece: coarser, still exact at its edges.
    """
    # [start, end, visible chars] per cluster; offsets within chunk. A combining mark joins the
    # cluster before it even across stripped invisibles, so "e" ZWSP U+0301 still composes.
    starts: list[int] = []
    ends: list[int] = []
    chars: list[str] = []
    pieces: list[str] = []
    removed = 0
    for i, ch in enumerate(chunk):
        kind, norm = _char_info(ch)
        if kind == _INVISIBLE:
            removed += 1
        elif kind == _COMBINING and chars:
            ends[-1] = i + 1
            chars[-1] += ch
            pieces[-1] = ""  # recomputed below: the mark may compose with the starter
        else:
            starts.append(i)
            ends.append(i + 1)
            chars.append(ch)
            pieces.append(norm)
    pieces = [p if p else _nfkc(c) for p, c in zip(pieces, chars, strict=True)]
    whole = _nfkc("".join(chars))
    if "".join(pieces) != whole:
        if chars:
            out.add(whole, base + starts[0], base + ends[-1], False)
        return removed
    for a, b, piece in zip(starts, ends, pieces, strict=True):
        out.add(piece, base + a, base + b, b - a == 1 and len(piece) == 1)
    return removed


def normalize(text: str) -> Normalized:
    """Return the scanning view of ``text``: NFKC, invisible characters removed, dashes folded.

    ``Normalized.text`` is what detectors scan; ``span_to_original`` maps their spans back;
    ``removed_invisible`` counts the stripped invisible characters (a prompt-injection signal).
    """
    if text.isascii():
        return Normalized(text, text)
    if _ODD_RE.search(text) is None and unicodedata.is_normalized("NFKC", text):
        return Normalized(text, text)
    # Full-width punctuation and digits (CJK text) map one to one: translate them at C speed;
    # what is still not normalized after that is rare and walked below, block by block.
    folded = _fold_simple(text)
    if _ODD_RE.search(folded) is None and unicodedata.is_normalized("NFKC", folded):
        return Normalized(folded, text)
    out = _Builder()
    removed = 0
    start = 0
    while start < len(text):
        end = _block_end(text, start)
        block = folded[start:end]
        if block.isascii() or (
            _ODD_RE.search(block) is None and unicodedata.is_normalized("NFKC", block)
        ):
            out.add(block, start, end, True)
        else:
            removed += _walk_block(text, folded, start, end, out)
        start = end
    return Normalized(
        "".join(out.parts),
        text,
        removed,
        out.norm_starts,
        out.orig_starts,
        out.orig_ends,
        out.identity,
    )


def _block_end(text: str, start: int) -> int:
    """End of the block starting at ``start``: the next ASCII character after ~_BLOCK chars.

    Blocks split before an ASCII character normalize independently: an ASCII character never
    composes with what precedes it, and as a starter it stops canonical reordering.
    """
    end = start + _BLOCK
    if end >= len(text):
        return len(text)
    m = _ASCII_CHAR.search(text, end)
    return m.start() if m else len(text)


def _walk_block(text: str, folded: str, start: int, end: int, out: _Builder) -> int:
    """Normalize ``text[start:end]`` run by run of non-ASCII characters.

    ``folded`` is ``text`` with the one-for-one replacements done; a run that is normalized
    in it is taken as is, only the others are walked character by character.
    """
    removed = 0
    pos = start
    for m in _NON_ASCII_RUN.finditer(text, start, end):
        run_start, run_end = m.span()
        # A combining mark may compose with the ASCII character just before the run.
        lead = run_start - 1 if run_start > pos else run_start
        out.add(text[pos:lead], pos, lead, True)
        chunk = folded[lead:run_end]
        if _ODD_RE.search(chunk) is None and unicodedata.is_normalized("NFKC", chunk):
            out.add(chunk, lead, run_end, True)
        else:
            removed += _walk_chunk(text[lead:run_end], lead, out)
        pos = run_end
    out.add(text[pos:end], pos, end, True)
    return removed
