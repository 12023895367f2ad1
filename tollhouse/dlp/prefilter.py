"""One hyperscan pass that says where each rule's patterns can match, when hyperscan is present.

Without it the engine finds cheap triggers (digit runs, literals) and runs each rule's exact
patterns around every trigger; text full of numbers (logs, code, tables) then costs a window per
digit run per rule. With hyperscan, every pattern of bounded width is compiled in *prefilter*
mode (lookarounds relaxed, so it matches a superset of what Python's ``re`` matches) together
with the literal triggers, and one scan over the text reports where a match of each pattern can
end. Python's ``re`` then runs each pattern only on the few short windows ending there, so the
result is what a full ``finditer`` of the presidio pattern would give, at a fraction of the cost.

Hyperscan sees bytes: only ASCII text goes through it (one byte per character, same offsets);
other text takes the trigger path. A pattern hyperscan cannot parse, or whose syntax means
something else in PCRE, stays on the trigger path too. :func:`token_runs` is the long-token
search both paths share: a byte-shape translation and ``bytes.find`` instead of a regex.
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


def _import_hyperscan() -> Any:
    try:  # optional: pure-Python trigger windows when it is missing
        return importlib.import_module("hyperscan")
    except ImportError:  # pragma: no cover - depends on the platform
        return None


hyperscan: Any = _import_hyperscan()

__all__ = [
    "MAX_WIDTH",
    "Prefilter",
    "available",
    "build_prefilter",
    "max_width",
    "pattern_width",
    "token_runs",
]

log = logging.getLogger(__name__)

MAX_WIDTH = 512  # longer (or unbounded) patterns keep trigger windows
_UNBOUNDED_WIDTH = 1 << 20  # what re's parser reports for "*" and "+" is far above this
# Python-only or differently-meaning syntax: "{,n}" is a literal in PCRE, "[:alpha:]" a class,
# "\Z" differs at a final newline, \N \p \u are Python escapes. Such patterns stay in Python.
_NOT_PCRE = re.compile(r"\{,|\[:|\\[ZzNpPuUx]|\(\?[#x]|\(\?[aLu]")

# Long tokens (keys, addresses, base64) in ASCII text: class characters -> "a", "=" stays.
_TOKEN_CLASS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-")
_TOKEN_SHAPE = bytes(
    ord("a") if c in _TOKEN_CLASS else ord("=") if c == ord("=") else ord(" ") for c in range(256)
)
_TOKEN_MIN = b"a" * 24
_TOKEN_RUN = re.compile(rb"a*={0,2}")


def available() -> bool:
    """True when the hyperscan extension imported (and the one-pass prefilter can be used)."""
    return hyperscan is not None


def max_width(pattern: Any) -> int | None:
    """Most characters a match of compiled ``pattern`` can span; None when unbounded or unknown."""
    try:
        from re import _parser  # type: ignore[attr-defined]

        low, high = _parser.parse(pattern.pattern, pattern.flags).getwidth()
    except Exception:
        return None
    return high if low > 0 and high <= MAX_WIDTH else None


def pattern_width(pattern: Any) -> int | None:
    """Most characters a match of ``pattern`` can span, however many; None when unbounded."""
    try:
        from re import _parser  # type: ignore[attr-defined]

        _, high = _parser.parse(pattern.pattern, pattern.flags).getwidth()
    except Exception:
        return None
    return high if high < _UNBOUNDED_WIDTH else None


def _hs_flags(flags: int) -> int:
    out = hyperscan.HS_FLAG_PREFILTER
    if flags & re.IGNORECASE:
        out |= hyperscan.HS_FLAG_CASELESS
    if flags & re.DOTALL:
        out |= hyperscan.HS_FLAG_DOTALL
    if flags & re.MULTILINE:
        out |= hyperscan.HS_FLAG_MULTILINE
    return out


@dataclass(frozen=True, slots=True)
class Scan:
    """What one pass found: match ends per pattern key, hit spans per literal trigger."""

    ends: dict[tuple[int, int], list[int]]  # (rule index, pattern index) -> sorted end offsets
    literals: dict[str, list[tuple[int, int]]]  # trigger -> (start, end) spans


class Prefilter:
    """A compiled hyperscan database of patterns and literal triggers. Thread-safe to scan."""

    def __init__(
        self, db: Any, ids: list[tuple[int, int] | tuple[str, int]], covered: frozenset[int]
    ) -> None:
        self._db = db
        self._ids = ids  # expression id -> (rule, pattern) or (trigger, literal length)
        self.covered = covered  # rule indexes whose every pattern is in the database
        self._scratch = hyperscan.Scratch(db)
        self._local = threading.local()

    def scan(self, data: bytes) -> Scan | None:
        """Run the database over ASCII ``data`` once; None if hyperscan fails (use triggers)."""
        buckets: list[list[int]] = [[] for _ in self._ids]

        def on_match(expr: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            buckets[expr].append(end)

        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._scratch.clone()
        try:
            self._db.scan(data, match_event_handler=on_match, scratch=scratch)
        except hyperscan.error as e:  # pragma: no cover - e.g. out of memory
            log.warning("hyperscan scan failed, using trigger windows: %s", e)
            return None
        ends: dict[tuple[int, int], list[int]] = {}
        literals: dict[str, list[tuple[int, int]]] = {}
        for key, found in zip(self._ids, buckets, strict=True):
            if not found:
                continue
            found.sort()  # hyperscan reports in end order; make sure
            if isinstance(key[0], str):
                literals[key[0]] = [(end - key[1], end) for end in found]
            else:
                ends[key] = found
        return Scan(ends, literals)


def build_prefilter(
    patterns: Sequence[Sequence[Any]], literal_triggers: Sequence[str]
) -> Prefilter | None:
    """Compile ``patterns`` (per rule, compiled ``re`` patterns) and literal triggers.

    A rule is *covered* when all its patterns have a bounded width and compile in hyperscan;
    only covered rules' patterns enter the database. Literal triggers are "lit:TEXT" or
    "kw:text" (case-insensitive). Returns None without hyperscan or when compiling fails.
    Compiling takes about a second; the result is cached for scanners with the same rules.
    """
    if hyperscan is None:
        return None
    key = (
        tuple(tuple((p.pattern, p.flags) for p in ps) for ps in patterns),
        tuple(literal_triggers),
    )
    return _build(key, tuple(tuple(ps) for ps in patterns))


@lru_cache(maxsize=8)
def _build(key: tuple[object, ...], patterns: tuple[tuple[Any, ...], ...]) -> Prefilter | None:
    literal_triggers: tuple[str, ...] = key[1]  # type: ignore[assignment]
    candidates = [[p for p in ps if isinstance(p, re.Pattern) and _pcre_safe(p)] for ps in patterns]
    entries = [
        (ri, pi, p)
        for ri, ps in enumerate(patterns)
        if len(candidates[ri]) == len(ps) and ps
        for pi, p in enumerate(ps)
    ]
    db = _compile(entries, literal_triggers)
    if db is None:  # some pattern hyperscan rejects: find the rules it can take, one by one
        bad = {ri for ri, _, p in entries if _compile([(ri, 0, p)], ()) is None}
        entries = [e for e in entries if e[0] not in bad]
        db = _compile(entries, literal_triggers)
        if db is None:
            log.warning("hyperscan prefilter disabled: the rules do not compile")
            return None
    ids: list[tuple[int, int] | tuple[str, int]] = [(ri, pi) for ri, pi, _ in entries]
    ids.extend((t, len(t.partition(":")[2])) for t in _literals(literal_triggers))
    return Prefilter(db, ids, frozenset(ri for ri, _, _ in entries))


def _pcre_safe(pattern: re.Pattern[str]) -> bool:
    """True when ``pattern`` is ASCII, of bounded width and means the same in PCRE syntax."""
    return (
        pattern.pattern.isascii()
        and max_width(pattern) is not None
        and _NOT_PCRE.search(pattern.pattern) is None
    )


def _literals(triggers: Sequence[str]) -> list[str]:
    return [t for t in triggers if t.startswith(("lit:", "kw:")) and t.isascii()]


def _compile(entries: Sequence[tuple[int, int, Any]], literal_triggers: Sequence[str]) -> Any:
    """A block-mode database of the patterns in ``entries`` then the literal triggers."""
    expressions = [p.pattern.encode() for _, _, p in entries]
    flags = [_hs_flags(p.flags) for _, _, p in entries]
    for t in _literals(literal_triggers):
        kind, _, needle = t.partition(":")
        expressions.append(re.escape(needle).encode())
        flags.append(hyperscan.HS_FLAG_CASELESS if kind == "kw" else 0)
    if not expressions:
        return None
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        db.compile(
            expressions=expressions,
            ids=list(range(len(expressions))),
            elements=len(expressions),
            flags=flags,
        )
    except hyperscan.error:
        return None
    return db


def token_runs(text: str) -> Iterator[tuple[int, int]]:
    """Spans of ``[A-Za-z0-9+/_-]{24,}={0,2}`` in ASCII ``text``, via a byte shape and find."""
    shape = text.encode("ascii").translate(_TOKEN_SHAPE)
    i = shape.find(_TOKEN_MIN)
    while i >= 0:
        end = _TOKEN_RUN.match(shape, i).end()  # type: ignore[union-attr]
        yield i, end
        i = shape.find(_TOKEN_MIN, end)
