"""The detection engine: one fast pass finds where rules can match, exact patterns run only there.

Presidio runs each recognizer's regexes over the whole text, one pass per pattern: ~50 passes
over a 100 KB prompt. Here one pass finds candidates and each rule's exact presidio patterns run
only on small windows around them; its validators and context words then decide the score.

- With hyperscan (:mod:`tollhouse.dlp.prefilter`) and ASCII text, the pass is one hyperscan
  scan: it reports where a match of each bounded presidio pattern (the number and token rules)
  can end, and where the literal triggers of the other rules (key prefixes, ``@``) occur.
- Otherwise the pass is a set of cheap *triggers*: ``str.find`` for literals, a digit-run
  regex for numbers, a byte-shape search for long tokens. The result is the same (tested).

Patterns that can never reach the policy's ``min_score`` are dropped up front. The text scanned
is the normalized view (NFKC, invisible characters removed); spans map back to the original.
An optional NER model (:mod:`tollhouse.dlp.ner`) runs on the same view, when a policy sets one.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from tollhouse.dlp.ner import NER_DETECTOR, NerRecognizer
from tollhouse.dlp.prefilter import Scan, build_prefilter, max_width, pattern_width, token_runs
from tollhouse.dlp.recognizers import NUMBER_TRIGGER, TOKEN_TRIGGER, Rule
from tollhouse.dlp.validators import is_hash_like
from tollhouse.normalize import normalize
from tollhouse.slices import finditer as bounded_finditer
from tollhouse.slices import search as bounded_search

__all__ = ["Detection", "Detector"]

_WORD_TAIL = re.compile(r"[\w-]*")
_WORD = re.compile(r"[a-z0-9]+")
_NAMED_GROUP = re.compile(r"\(\?P<\w+>")
_CONTEXT_BEFORE, _CONTEXT_AFTER = 80, 30
_CONTEXT_BOOST = 0.35  # presidio's default context similarity factor
_MIN_SCORE_WITH_CONTEXT = 0.4
_END_SLACK = 16  # chars past a prefilter match end that the window keeps, for lookaheads
_LOOK_SLACK = 64  # chars a slice keeps past the longest match, for lookaheads and \\b
_UNBOUNDED = 1024  # what a slice lets an unbounded pattern (or trigger) reach


@dataclass(frozen=True, slots=True)
class Detection:
    """A confirmed match: span in the text that was scanned, entity, score and rule."""

    start: int
    end: int
    entity: str
    score: float
    rule: Rule
    via_base64: bool = False


class Detector:
    """Finds entities in text with a fixed set of rules. Build once, call :meth:`detect` often."""

    def __init__(
        self,
        rules: Sequence[Rule],
        min_score: float = 0.4,
        allow_values: Iterable[str] = (),
        allow_patterns: Iterable[str] = (),
        decode_base64: bool = True,
        ner: NerRecognizer | None = None,
    ) -> None:
        self.min_score = min_score
        self.ner = ner
        self.ner_rules = {
            e: Rule(name=NER_DETECTOR, entity=e, patterns=(), triggers=(), ner=True)
            for e in (ner.entities if ner is not None else ())
        }
        self.rules = [self._live(r) for r in rules]
        self.allow_values = frozenset(v.casefold() for v in allow_values)
        self.allow_patterns = [re.compile(p) for p in allow_patterns]
        self.decode_base64 = decode_base64
        # Each distinct trigger is searched once; rules sharing it share its windows.
        self._by_trigger = self._group_by_trigger(self.rules)
        self._regex = {
            t: re.compile(_NAMED_GROUP.sub("(?:", t[3:]))
            for t in self._by_trigger
            if t.startswith("re:")
        }
        # With hyperscan: one pass finds where covered rules' patterns may match (ASCII text).
        # Rules found at a literal (keys, custom IDs) are cheap already; cover the others.
        self._prefilter = build_prefilter(
            [
                [p for p, _ in r.patterns] if any(t.startswith("re:") for t in r.triggers) else []
                for r in self.rules
            ],
            list(self._by_trigger),
        )
        covered = self._prefilter.covered if self._prefilter is not None else frozenset()
        self._by_trigger_fast = self._group_by_trigger(
            [r for i, r in enumerate(self.rules) if i not in covered]
        )
        self._widths = {
            (ri, pi): max_width(p) or 0
            for ri in covered
            for pi, (p, _) in enumerate(self.rules[ri].patterns)
        }
        # How far one regex call may read past where a match starts: the longest match plus
        # lookahead slack, so that bounding the call never changes what it finds.
        self._reach = {
            id(p): _reach(p, r.right if r.anchored else _UNBOUNDED)
            for r in self.rules
            for p, _ in r.patterns
        }

    def _live(self, rule: Rule) -> Rule:
        """``rule`` without the patterns that can never reach ``min_score`` (no checksum)."""
        if rule.validate is not None:
            return rule  # a checksum can raise any match to 1.0
        ctx = bool(rule.context)
        live = tuple(
            (p, score) for p, score in rule.patterns if _best_score(score, ctx) >= self.min_score
        )
        return rule if len(live) == len(rule.patterns) else dataclasses.replace(rule, patterns=live)

    def _group_by_trigger(self, rules: Sequence[Rule]) -> dict[str, list[Rule]]:
        by_trigger: dict[str, list[Rule]] = {}
        for rule in rules:
            if not rule.patterns:
                continue
            for trigger in rule.triggers:
                by_trigger.setdefault(trigger, []).append(rule)
        if self.decode_base64:
            by_trigger.setdefault(TOKEN_TRIGGER, [])
        return by_trigger

    @property
    def uses_prefilter(self) -> bool:
        """True when ASCII text is scanned with the one-pass hyperscan prefilter."""
        return self._prefilter is not None

    def detect(self, text: str) -> list[Detection]:
        """Entities in ``text``, spans as offsets into ``text``; overlaps not yet resolved."""
        view = normalize(text)
        runs: list[tuple[int, int]] = []
        found = self._detect_plain(view.text, runs if self.decode_base64 else None)
        if self.decode_base64:
            found.extend(self._detect_base64(view.text, runs))
        if self.ner is not None and self.ner.applies_to(text):
            found.extend(self._detect_ner(view.text))
        if view.text is text:
            return found
        out = []
        for d in found:
            start, end = view.span_to_original(d.start, d.end)
            out.append(Detection(start, end, d.entity, d.score, d.rule, d.via_base64))
        return out

    def _detect_ner(self, text: str) -> list[Detection]:
        """Names, places, organisations the NER model finds in ``text`` (the normalized view)."""
        assert self.ner is not None
        return [
            Detection(start, end, entity, score, self.ner_rules[entity])
            for start, end, entity, score in self.ner.find(text)
            if entity in self.ner_rules and not self.is_allowed(text[start:end])
        ]

    def is_allowed(self, value: str) -> bool:
        """True when policy allow-lists ``value`` (documented examples, public addresses)."""
        if value.casefold() in self.allow_values:
            return True
        return any(p.fullmatch(value) for p in self.allow_patterns)

    def _hits(self, trigger: str, text: str, lower: str | None) -> Iterator[tuple[int, int]]:
        """Spans where ``trigger`` occurs: str.find for literals, one regex pass otherwise."""
        kind, _, needle = trigger.partition(":")
        if trigger == TOKEN_TRIGGER and text.isascii():
            yield from token_runs(text)
            return
        if kind == "re":  # in slices: a long digit run comes back in pieces, windows rejoin them
            for m in bounded_finditer(self._regex[trigger], text, overlap=_UNBOUNDED):
                yield m.span()
            return
        haystack = text if kind == "lit" else lower
        if haystack is None:  # lowercasing changed offsets (rare non-ASCII): use a regex
            for m in bounded_finditer(re.compile(re.escape(needle), re.IGNORECASE), text):
                yield m.span()
            return
        i = haystack.find(needle)
        while i >= 0:
            yield i, i + len(needle)
            i = haystack.find(needle, i + len(needle))

    @staticmethod
    def _windows(text: str, hits: list[tuple[int, int, int]], rule: Rule) -> list[tuple[int, int]]:
        """Merged windows around ``hits`` with ``rule``'s margins, skipping short digit runs."""
        n = len(text)
        windows: list[tuple[int, int]] = []
        for hs, he, digits in hits:
            if not rule.min_digits <= digits <= rule.max_digits:
                continue
            if rule.glued and not (
                (hs > 0 and text[hs - 1].isalpha()) or (he < n and text[he].isalpha())
            ):
                continue
            ws, we = max(0, hs - rule.left), min(n, he + rule.right)
            if rule.token:  # the entity cannot span whitespace: stay inside the token
                ws = max(ws, text.rfind(" ", ws, hs) + 1, text.rfind("\n", ws, hs) + 1)
                cut = [i for i in (text.find(" ", he, we), text.find("\n", he, we)) if i >= 0]
                we = min(cut, default=we)
            # Never end a window inside a word: "\b" at the window's end would lie.
            we = _WORD_TAIL.match(text, we, min(n, we + 64)).end()  # type: ignore[union-attr]
            if windows and ws <= windows[-1][1]:
                windows[-1] = (windows[-1][0], max(windows[-1][1], we))
            else:
                windows.append((ws, we))
        return windows

    def _detect_plain(
        self, text: str, base64_runs: list[tuple[int, int]] | None = None
    ) -> list[Detection]:
        """Detections in ``text``; fills ``base64_runs`` with the long tokens seen, if given."""
        best: dict[tuple[str, int, int], Detection] = {}
        cache: dict[tuple[int, ...], list[tuple[int, int]]] = {}  # rules with one window shape
        scan: Scan | None = None
        by_trigger = self._by_trigger
        if self._prefilter is not None and text.isascii():
            scan = self._prefilter.scan(text.encode("ascii"))
        if scan is not None:
            by_trigger = self._by_trigger_fast
            for key, ends in scan.ends.items():
                rule = self.rules[key[0]]
                pattern, base = rule.patterns[key[1]]
                reach = self._reach[id(pattern)]
                for m in _matches_ending(text, pattern, self._widths[key], ends, reach):
                    self._keep(best, text, rule, m, base)
        lowered: str | None = None
        if scan is None and any(t.startswith("kw:") for t in by_trigger):
            lower = text.lower()
            lowered = lower if len(lower) == len(text) else None
        for trigger, rules in by_trigger.items():
            counting = trigger == NUMBER_TRIGGER
            if scan is not None and not trigger.startswith("re:"):
                spans: Iterable[tuple[int, int]] = scan.literals.get(trigger, ())
            else:
                spans = self._hits(trigger, text, lowered)
            hits = [
                (hs, he, sum(map(str.isdigit, text[hs:he])) if counting else 1 << 30)
                for hs, he in spans
            ]
            if trigger == TOKEN_TRIGGER and base64_runs is not None:
                base64_runs.extend((hs, he) for hs, he, _ in hits)
            if not hits:
                continue
            for rule in rules:
                if rule.anchored:
                    self._anchored(best, text, hits, rule)
                    continue
                for m, base in self._matches(text, hits, rule, cache):
                    self._keep(best, text, rule, m, base)
        return list(best.values())

    def _anchored(
        self,
        best: dict[tuple[str, int, int], Detection],
        text: str,
        hits: list[tuple[int, int, int]],
        rule: Rule,
    ) -> None:
        """One bounded match per hit where the match starts at the trigger. A hit inside a
        value this rule already found is skipped: "password=" repeated, or a PEM body full of
        "-----BEGIN", costs one match per finding, not one per occurrence."""
        n = len(text)
        covered = -1
        for hs, _, _ in hits:
            if hs < covered:
                continue
            for pattern, base in rule.patterns:
                m = pattern.match(text, hs, min(n, hs + self._reach[id(pattern)]))
                if m is None:
                    continue
                d = self._keep(best, text, rule, m, base)
                if d is not None:
                    covered = max(covered, m.end())

    def _keep(
        self,
        best: dict[tuple[str, int, int], Detection],
        text: str,
        rule: Rule,
        m: re.Match[str],
        base: float,
    ) -> Detection | None:
        """Confirm ``m``; keep it unless the same rule already found the span with more score."""
        d = self._confirm(text, rule, m, base)
        if d is None:
            return None
        key = (rule.name, d.start, d.end)
        if key not in best or best[key].score < d.score:
            best[key] = d
        return d

    def _matches(
        self,
        text: str,
        hits: list[tuple[int, int, int]],
        rule: Rule,
        cache: dict[tuple[int, ...], list[tuple[int, int]]],
    ) -> Iterator[tuple[re.Match[str], float]]:
        shape = (
            id(hits),
            rule.left,
            rule.right,
            rule.min_digits,
            rule.max_digits,
            rule.glued,
            rule.token,
        )
        windows = cache.get(shape)
        if windows is None:
            windows = cache[shape] = self._windows(text, hits, rule)
        for ws, we in windows:
            if rule.prefilter is not None and bounded_search(rule.prefilter, text, ws, we) is None:
                continue
            for pattern, base in rule.patterns:
                reach = self._reach[id(pattern)]
                for m in bounded_finditer(pattern, text, ws, we, overlap=reach):
                    yield m, base

    def _confirm(self, text: str, rule: Rule, m: re.Match[str], base: float) -> Detection | None:
        group = rule.value_group if rule.value_group <= (m.re.groups or 0) else 0
        start, end = m.span(group)
        if start >= end:
            return None
        value = text[start:end]
        score = base
        if rule.validate is not None:
            verdict = rule.validate(m.group(0) if group == 0 else value)
            if verdict is False:
                return None
            if verdict is True:
                score = 1.0
        if rule.invalidate is not None and rule.invalidate(value):
            return None
        if rule.group == "pii" and (
            _inside_identifier(text, start, end) or _inside_number(text, start, end)
        ):
            return None
        if rule.entity == "EMAIL_ADDRESS" and _URL_USERINFO.search(text, max(0, start - 64), start):
            return None  # "scheme://user:password@host": a credential, found as one
        context = bool(rule.context) and self._has_context(text, start, end, rule.context)
        if not context and (
            rule.needs_context
            or (rule.not_context and _has_word_before(text, start, rule.not_context))
        ):
            return None
        if score < 1.0 and context:
            score = max(min(1.0, score + _CONTEXT_BOOST), _MIN_SCORE_WITH_CONTEXT)
        if score < self.min_score or self.is_allowed(value):
            return None
        return Detection(start, end, rule.entity, score, rule)

    @staticmethod
    def _has_context(text: str, start: int, end: int, words: tuple[str, ...]) -> bool:
        around = (
            text[max(0, start - _CONTEXT_BEFORE) : start] + " " + text[end : end + _CONTEXT_AFTER]
        )
        found = set(_WORD.findall(around.lower()))
        return any(w in found for w in words)

    def _detect_base64(self, text: str, runs: list[tuple[int, int]]) -> list[Detection]:
        """Entities inside base64 runs that decode to text; each maps to the whole run."""
        out: list[Detection] = []
        for start, end in runs:
            run = text[start:end]
            if run.isalpha() or run.isdigit():
                continue  # a long word or number, not an encoding
            decoded = _decode_text(run)
            if decoded is None:
                continue
            for d in self._detect_plain(decoded):
                out.append(Detection(start, end, d.entity, d.score, d.rule, True))
        return out


def _best_score(score: float, context: bool) -> float:
    """The highest score a match of a pattern scoring ``score`` can reach without a checksum."""
    if context and score < 1.0:
        return max(min(1.0, score + _CONTEXT_BOOST), _MIN_SCORE_WITH_CONTEXT)
    return score


def _reach(pattern: re.Pattern[str], fallback: int) -> int:
    """Characters one call matching ``pattern`` may read: its widest match (or ``fallback``
    when it has no bound) plus slack for lookaheads and word boundaries."""
    width = pattern_width(pattern)
    return (width if width is not None else max(fallback, _UNBOUNDED)) + _LOOK_SLACK


def _matches_ending(
    text: str, pattern: re.Pattern[str], width: int, ends: list[int], reach: int
) -> Iterator[re.Match[str]]:
    """Matches of ``pattern`` that end at one of ``ends`` (sorted), as a full finditer finds them.

    Every real match ends where the prefilter reported an end, and starts at most ``width``
    characters earlier; windows stop past a word so ``\\b`` and lookaheads see real text.
    """
    n = len(text)
    real = set(ends)
    ws, we = max(0, ends[0] - width), ends[0] + _END_SLACK
    for e in (*ends[1:], None):
        if e is not None and e - width <= we:
            we = e + _END_SLACK  # ends are sorted: this window grows
            continue
        we = _WORD_TAIL.match(text, min(n, we), min(n, we + 64)).end()  # type: ignore[union-attr]
        if e is not None and e - width <= we:  # the word tail reaches the next end's window
            we = e + _END_SLACK
            continue
        for m in bounded_finditer(pattern, text, ws, we, overlap=reach):
            if m.end() in real:
                yield m
        if e is not None:
            ws, we = e - width, e + _END_SLACK


_HEXISH = frozenset("0123456789abcdefABCDEF-")


def _inside_identifier(text: str, start: int, end: int) -> bool:
    """True when the span is part of a UUID or hex digest (digits in a hash are not an ID)."""
    ts, te = start, end
    while ts > 0 and text[ts - 1] in _HEXISH and start - ts < 64:
        ts -= 1
    while te < len(text) and text[te] in _HEXISH and te - end < 64:
        te += 1
    return (ts, te) != (start, end) and is_hash_like(text[ts:te])


_NOT_CONTEXT_BEFORE = 40
_URL_USERINFO = re.compile(r"://[^\s/@:]*:?$")


def _has_word_before(text: str, start: int, words: tuple[str, ...]) -> bool:
    """True when one of ``words`` occurs in the few characters before ``start``."""
    found = set(_WORD.findall(text[max(0, start - _NOT_CONTEXT_BEFORE) : start].lower()))
    return any(w in found for w in words)


def _inside_number(text: str, start: int, end: int) -> bool:
    """True when the span's digits continue past it: a piece of a longer number (a timestamp,
    the decimals of pi) is not an ID, whatever its checksum says."""
    return (start > 0 and text[start - 1].isdigit() and text[start].isdigit()) or (
        end < len(text) and text[end].isdigit() and text[end - 1].isdigit()
    )


def _decode_text(run: str) -> str | None:
    """The text a base64 run encodes, or None when it does not encode mostly printable text."""
    padded = run.rstrip("=")
    padded += "=" * (-len(padded) % 4)
    alphabet = "-_" if ("-" in run or "_" in run) else "+/"
    try:
        raw = base64.b64decode(padded, altchars=alphabet.encode(), validate=True)
        decoded = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    if not decoded:
        return None
    printable = sum(c.isprintable() or c in "\n\r\t" for c in decoded)
    return decoded if printable >= 0.95 * len(decoded) else None
