"""How a rule author's pattern becomes regex source.

Authors write patterns against the skeleton (lower case, accents stripped) and use a plain
space between words. The space compiles to ``\\s+`` (``" ?"`` to ``\\s*``) so that a phrase also
matches across line breaks and runs of spaces. For the spaced-letters view (``i g n o r e``
joined into ``ignore``) the same pattern is *squeezed*: spaces and ``\\b`` are dropped, because
the joined text has no word boundaries left.
"""

from __future__ import annotations

import re
from re import _constants as _C  # type: ignore[attr-defined]
from re import _parser as _P  # type: ignore[attr-defined]
from typing import Any

__all__ = ["check_pattern", "loosen", "squeeze"]

_FORBIDDEN_FLAGS = re.compile(r"\(\?[aiLmsux-]*[x]")  # verbose mode would change what a space means


def _rewrite(pattern: str, space: str, boundary: str) -> str:
    out: list[str] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if not in_class and nxt == "b":
                out.append(boundary)
            elif not in_class and nxt == " ":
                out.append(space)
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            out.append(ch)
        elif ch == "[":
            in_class = True
            out.append(ch)
            if pattern[i + 1 : i + 2] == "^":
                out.append("^")
                i += 1
            if pattern[i + 1 : i + 2] == "]":  # a literal ] right after [ or [^
                out.append("]")
                i += 1
        elif ch == " ":
            nxt = pattern[i + 1 : i + 2]
            if nxt in ("?", "*", "+") and space != "(?:)":
                out.append(r"\s*" if nxt in "?*" else r"\s+")  # " ?" means optional whitespace
                i += 1
            else:
                out.append(space)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def loosen(pattern: str) -> str:
    """Regex source for the skeleton view: a space matches any run of whitespace."""
    return _rewrite(pattern, r"\s+", r"\b")


# "(?:\w+ ){0,3}?" squeezed is "(?:\w+(?:)){0,3}?": up to three runs of letters with nothing
# between them, which a joined run can split in O(n^3) ways before a match fails ("ignore"
# spaced out a hundred times took minutes). With no spaces left it means "any letters", so it
# becomes "\w*?": the same strings match, in linear time per try.
_WORD_RUNS = re.compile(r"\(\?:(\[[^\]]*\]|\\w)\+\(\?:\)\)(?:\{0,\d+\}|\?)")


def squeeze(pattern: str) -> str:
    """Regex source for joined spaced-out letters: spaces and word boundaries vanish."""
    return _WORD_RUNS.sub(lambda m: m.group(1) + "*", _rewrite(pattern, "(?:)", "(?:)"))


def _starts_with_open_run(items: list[tuple[Any, Any]]) -> bool:
    """True when a match can start with an unbounded repeat of one character (``-{3,}``).

    The scanner tries such a pattern at every position of a run of that character, and each
    try reads to the end of the run: a 10 KB line of dashes costs seconds. A lookbehind in
    front (``(?<![-=])``) makes every try but the first fail at once.
    """
    for op, av in items:
        if op is _C.AT:
            continue
        if op in (_C.ASSERT, _C.ASSERT_NOT):
            return av[0] >= 0  # a lookbehind guards the start; a lookahead does not
        if op is _C.SUBPATTERN:
            return _starts_with_open_run(list(av[-1]))
        if op is _C.BRANCH:
            return any(_starts_with_open_run(list(b)) for b in av[1])
        if op in (_C.MAX_REPEAT, _C.MIN_REPEAT, _C.POSSESSIVE_REPEAT):
            lo, hi, sub = av
            sub = list(sub)
            one_char = len(sub) == 1 and sub[0][0] in (_C.LITERAL, _C.IN, _C.ANY)
            return one_char and hi is _C.MAXREPEAT and lo >= 1
        return False
    return False


def check_pattern(pattern: str) -> str | None:
    """Why ``pattern`` cannot be used, or None when it compiles in both views."""
    if _FORBIDDEN_FLAGS.search(pattern):
        return "verbose mode (?x) is not allowed: a space in a pattern means one whitespace"
    if re.search(r"\(\?P?<(?![=!])", pattern) or "(?P=" in pattern:
        return "named groups are reserved for the combined matcher; use (?:...)"
    for variant in (loosen(pattern), squeeze(pattern)):
        try:
            compiled = re.compile(variant)
        except re.error as exc:
            return f"invalid regular expression: {exc}"
        if compiled.match(""):
            return "pattern matches the empty string"
    if _starts_with_open_run(list(_P.parse(loosen(pattern)))):
        return (
            "pattern starts with an unbounded run of one character; put a lookbehind in front, "
            "e.g. (?<!-)-{3,}, or a long run of it makes every scan slow"
        )
    return None
