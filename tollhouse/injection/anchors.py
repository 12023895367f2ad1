"""Literal prefixes of rule patterns: the prefilter that keeps scanning fast.

Python's ``re`` tries every alternative at every position of the text, so one big alternation
of a hundred rules costs ~100 ms on 10 KB. Almost every rule starts with a literal word
(``ignore``, ``vergiss``, ``<|im_start``), though. At load time we extract those literal prefixes
from the parsed pattern; at scan time a set lookup over the text's words finds which prefixes
occur at all, ``str.find`` locates them, and the rule's compiled pattern is only ``match``-ed at
those positions. A pattern without a literal prefix falls back to a full ``search``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


def _sre() -> tuple[Any, Any]:
    """CPython's regex parser and its constants (private: a surprise only costs speed)."""
    try:
        return importlib.import_module("re._parser"), importlib.import_module("re._constants")
    except ImportError:  # pragma: no cover - other interpreters
        return None, None


sre_p, sre_c = _sre()

__all__ = ["KEY_LENGTH", "Anchor", "anchors"]

_LIMIT = 96  # prefixes per pattern; beyond that the shorter prefixes found so far are kept


KEY_LENGTH = 5


@dataclass(frozen=True, slots=True)
class Anchor:
    """A literal that a match must start with, and the key that finds it among text words.

    ``key`` is the first :data:`KEY_LENGTH` characters of the leading word, or the whole word
    when it is shorter (``complete``: followed by whitespace, so only that exact word can start a
    match); None means the literal is searched for directly (punctuation-led such as ``</``, a
    CJK phrase, or a very short partial word).
    """

    literal: str
    key: str | None
    complete: bool = False


def _is_space_class(av: Any) -> bool:
    items = list(av)
    return bool(items) and all(
        op is sre_c.CATEGORY and arg is sre_c.CATEGORY_SPACE for op, arg in items
    )


def _extend(out: set[str], alts: set[str]) -> set[str]:
    """Append each alternative to each prefix that is not final (ending in whitespace)."""
    return {p if p.endswith(" ") else p + a for p in out for a in alts}


def _small_set(av: Any) -> bool:
    items = list(av)
    return 0 < len(items) <= 4 and all(op is sre_c.LITERAL for op, _ in items)


def _prefixes(items: list[tuple[Any, Any]]) -> tuple[set[str], bool]:
    """Literal prefixes of a parsed sequence, and whether the whole sequence was literal."""
    out = {""}
    for op, av in items:
        if op is sre_c.LITERAL:
            out = _extend(out, {chr(av)})
            continue
        if op in (sre_c.AT, sre_c.ASSERT, sre_c.ASSERT_NOT):
            continue  # zero-width: constrains the match, adds no characters
        if op is sre_c.SUBPATTERN:
            alts, complete = _prefixes(list(av[-1]))
        elif op is sre_c.BRANCH:
            alts, complete = set(), True
            for branch in av[1]:
                sub, sub_complete = _prefixes(list(branch))
                alts |= sub
                complete = complete and sub_complete
        elif op is sre_c.IN and _small_set(av):
            alts, complete = {chr(arg) for _, arg in av}, True
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT):
            lo, hi, sub_items = av
            sub_list = list(sub_items)
            if (
                len(sub_list) == 1
                and sub_list[0][0] is sre_c.IN
                and _is_space_class(sub_list[0][1])
            ):
                # Whitespace ends a prefix (the text may hold any run of it there) and tells that
                # the word before it is complete; a prefix ending in " " is final.
                alts, complete = ({" "} if lo else {" ", ""}), True
                out = _extend(out, alts)
                continue
            sub, sub_complete = _prefixes(sub_list)
            sub_complete = sub_complete or all(a.endswith(" ") for a in sub)
            if lo == 0 and hi == 1 and sub_complete:
                alts, complete = sub | {""}, True  # optional literal: with and without it
            elif lo == 0:
                return out, False
            else:
                alts = {a * lo for a in sub} if sub_complete else sub
                complete = sub_complete and lo == hi
        else:
            return out, False
        if not complete and alts and all(a.endswith(" ") for a in alts):
            complete = True
        combined = _extend(out, alts)
        if len(combined) > _LIMIT:
            return out, False
        out = combined
        if not complete:
            return out, False
    return out, True


def _anchor(prefix: str) -> Anchor:
    literal = prefix.rstrip(" ")
    token = ""
    for ch in literal:
        if not (ch.isalnum() or ch == "_"):
            break
        token += ch
    if not token or not token.isascii():
        return Anchor(literal, None)
    if len(token) >= KEY_LENGTH:
        return Anchor(literal, token[:KEY_LENGTH])
    complete = len(token) < len(prefix)  # the word ends inside the prefix ("do not", "in ")
    if complete or len(token) >= 3:
        return Anchor(literal, token, complete and literal == token)
    return Anchor(literal, None)


def anchors(pattern: str) -> list[Anchor] | None:
    """The anchors of a (loosened) pattern, or None when some match has no literal start."""
    if sre_p is None:
        return None
    try:
        prefixes, _ = _prefixes(list(sre_p.parse(pattern)))
    except Exception:  # an unknown parser shape: fall back to a full search
        return None
    if not prefixes or any(not p.strip(" ") for p in prefixes):
        return None
    return sorted({_anchor(p) for p in prefixes}, key=lambda a: a.literal)
