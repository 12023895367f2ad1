# ruff: noqa: RUF001, RUF002 - the look-alike table and its docs hold look-alikes on purpose
"""Folding text into the view that injection rules match: the *skeleton*.

Rules are written once, in plain lower-case Latin (or CJK), and must still match when an attacker
writes ``ІGNОRE`` with Cyrillic letters, ``1gn0r3`` in leetspeak, ``i g n o r e`` spaced out, or
``ignóre`` with accents. The base normalization (NFKC, invisible characters removed) comes from
:mod:`tollhouse.normalize`; this module adds the injection-specific folds on top of it:

* confusables: Cyrillic, Greek and Latin small-capital look-alikes → Latin (a compact table
  written here, not a download of Unicode's confusables.txt);
* Latin diacritics stripped (``ü`` → ``u``) and case folded (``ß`` → ``ss``);
* leetspeak and spaced-letter views, built only when the skeleton shows signs of them.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

from tollhouse import slices

__all__ = [
    "Skeleton",
    "despace",
    "leet_views",
    "leet_word",
    "rot13",
    "skeleton",
]

# Look-alikes, both cases, mapped before case folding. Only letters whose glyph is (nearly)
# identical to a Latin letter: a real Cyrillic or Greek word is left alone unless it is mixed
# with Latin letters or made only of look-alikes (see _fold_word).
_CONFUSABLES: dict[str, str] = {
    # Cyrillic lower case
    "а": "a", "е": "e", "ѐ": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j",
    "к": "k", "ӏ": "l", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "ѕ": "s", "т": "t",
    "у": "y", "х": "x", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ɡ": "g",
    # Cyrillic upper case
    "А": "a", "В": "b", "Е": "e", "Ѐ": "e", "Ё": "e", "Һ": "h", "І": "i", "Ї": "i", "Ј": "j",
    "К": "k", "Ӏ": "l", "М": "m", "Н": "h", "О": "o", "Р": "p", "С": "c", "Ѕ": "s", "Т": "t",
    "У": "y", "Х": "x", "Ԁ": "d", "Ԛ": "q", "Ԝ": "w", "Ь": "b", "Ү": "y",
    # Greek lower case
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j",
    # Greek upper case
    "Α": "a", "Β": "b", "Ε": "e", "Ζ": "z", "Η": "h", "Ι": "i", "Κ": "k", "Μ": "m", "Ν": "n",
    "Ο": "o", "Ρ": "p", "Τ": "t", "Υ": "y", "Χ": "x", "Ϲ": "c",
    # Latin small capitals and IPA letters that NFKC leaves alone
    "ᴀ": "a", "ʙ": "b", "ᴄ": "c", "ᴅ": "d", "ᴇ": "e", "ɢ": "g", "ʜ": "h", "ɪ": "i", "ᴊ": "j",
    "ᴋ": "k", "ʟ": "l", "ᴍ": "m", "ɴ": "n", "ᴏ": "o", "ᴘ": "p", "ʀ": "r", "ꜱ": "s", "ᴛ": "t",
    "ᴜ": "u", "ᴠ": "v", "ᴡ": "w", "ʏ": "y", "ᴢ": "z", "ı": "i", "ɑ": "a", "ɩ": "i", "ʋ": "u",
}  # fmt: skip

# Scripts whose words go through the per-word confusable fold.
_FOREIGN_LETTER = re.compile(r"[\u0250-\u02af\u0370-\u03ff\u0400-\u052f\u1d00-\u1d2b\ua730-\ua7ff]")
# Whole words holding one such letter, tried at word starts only: "\w*[...]" tried at every
# position of a long Latin word would re-read the word from each (quadratic).
_FOREIGN_WORD = re.compile(
    r"(?<!\w)(?=\w*[\u0250-\u02af\u0370-\u03ff\u0400-\u052f\u1d00-\u1d2b\ua730-\ua7ff])\w+"
)
_LATIN_ACCENTED = re.compile("[\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]")
_SPACED_RUN = re.compile(r"(?<!\w)(?:\w[ ._*/\-]{1,2}){5,}\w(?!\w)")
_SPACED_DROP = str.maketrans(dict.fromkeys(" ._*/-"))

_LEET_I = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                         "$": "s", "!": "i", "|": "l"})  # fmt: skip
_LEET_L = str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                         "$": "s", "!": "i", "|": "l"})  # fmt: skip
_ROT13 = str.maketrans(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "nopqrstuvwxyzabcdefghijklmNOPQRSTUVWXYZabcdefghijklm",
)


@cache
def _latin_fold_table() -> dict[int, str]:
    """Latin letters with diacritics (U+00C0..U+024F) → their ASCII base letter.

    Built once on first use from ``unicodedata`` (no data file): ``é`` → ``e``, ``ø`` → ``o``.
    CJK is untouched, so Japanese voiced kana keep their marks.
    """
    table: dict[int, str] = {}
    for cp in range(0xC0, 0x250):
        ch = chr(cp)
        base = unicodedata.normalize("NFD", ch)[0]
        if base.isascii() and base.isalpha() and base != ch:
            table[cp] = base
    table.update({ord("ø"): "o", ord("Ø"): "o", ord("đ"): "d", ord("Đ"): "d", ord("ł"): "l",
                  ord("Ł"): "l", ord("ħ"): "h", ord("ŧ"): "t"})  # fmt: skip
    return table


@cache
def _confusable_table() -> dict[int, str]:
    return {ord(k): v for k, v in _CONFUSABLES.items()}


class Skeleton:
    """The folded view of one text plus what folding noticed on the way.

    ``mixed_script_words`` counts words that mix Latin with Cyrillic/Greek look-alikes, a
    homoglyph trick that is suspicious on its own.
    """

    __slots__ = ("mixed_script_words", "text")

    def __init__(self, text: str, mixed_script_words: int) -> None:
        self.text = text
        self.mixed_script_words = mixed_script_words


def skeleton(normalized: str) -> Skeleton:
    """Fold already-normalized text (NFKC, invisibles removed) into the matching skeleton."""
    mixed = 0
    text = normalized
    if not text.isascii():
        if _FOREIGN_LETTER.search(text):
            table = _confusable_table()
            counter = [0]

            def fold_word(m: re.Match[str]) -> str:
                word = m.group()
                folded = word.translate(table)
                has_latin = any("a" <= c.lower() <= "z" for c in word)
                if has_latin:
                    counter[0] += 1
                    return folded
                # A word made only of look-alikes reads as Latin to a human; anything else is a
                # genuine Cyrillic/Greek word and stays as written.
                if all(ord(c) in table or not c.isalpha() for c in word):
                    return folded
                return word

            text = _FOREIGN_WORD.sub(fold_word, text)
            mixed = counter[0]
        # A callback per accented letter beats str.translate, which looks up every character.
        table = _latin_fold_table()
        text = _LATIN_ACCENTED.sub(lambda m: table.get(ord(m.group()), m.group()), text)
    # Whitespace is left as is (rules match runs of it): collapsing it would cost a regex pass.
    return Skeleton(text.casefold(), mixed)


def leet_word(word: str, one: str = "i") -> str:
    """``word`` with leetspeak digits and symbols read as letters, ``1`` as ``one``."""
    return word.translate(_LEET_I if one == "i" else _LEET_L)


def leet_views(skel: str) -> list[str]:
    """Leetspeak-decoded variants of ``skel``: ``1`` reads as ``i`` or ``l``, so maybe two."""
    views = [skel.translate(_LEET_I)]
    if "1" in skel:
        views.append(skel.translate(_LEET_L))
    return views


def despace(skel: str) -> list[str]:
    """Runs of single letters spaced apart (``i g n o r e``), each joined into one word.

    The runs are found in bounded slices (a megabyte of ``1 2 3`` is one run, and one regex
    call over it would hold the GIL throughout); a run the slicing cut comes back in pieces two
    separator characters apart at most, which are joined again.
    """
    runs: list[str] = []
    last = -1
    for m in slices.finditer(_SPACED_RUN, skel):
        joined = m.group().translate(_SPACED_DROP)
        gap = skel[last : m.start()] if last >= 0 else "x"
        if runs and len(gap) <= 2 and not gap.translate(_SPACED_DROP):
            runs[-1] += joined
        else:
            runs.append(joined)
        last = m.end()
    return runs


def rot13(text: str) -> str:
    """ROT13 of the Latin letters in ``text``."""
    return text.translate(_ROT13)
