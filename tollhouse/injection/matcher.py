"""The compiled matcher: every rule of a pack, prefiltered by literal anchors.

Compiled once per pack (at policy load), never per request. A scan of one text:

1. normalize (shared NFKC + invisible stripping) and fold into the skeleton (:mod:`.fold`);
2. split the skeleton into words once (bytes ``translate`` + ``split``: C speed) and look the
   words' first three letters up in the anchor index (:mod:`.anchors`); only rules whose literal
   start occurs are ``match``-ed, and only where it occurs;
3. detectors reuse the same word list: long tokens are base64/hex/flood candidates, runs of
   one-letter words are spaced-out text, mixed digit-letter words that read as an anchor in
   leetspeak trigger the leetspeak view, ROT13 trigger words trigger the ROT13 view;
4. decoded views (leetspeak, ROT13, spaced letters, base64, hex, tag characters) are matched
   with the same rules; a hit found only there also fires the detector that names the view.

A benign 10 KB prompt costs one fold, one split and a few anchored matches.
"""

from __future__ import annotations

import itertools
import operator
import re

from tollhouse import slices
from tollhouse.injection.anchors import KEY_LENGTH, Anchor, anchors
from tollhouse.injection.fold import despace, leet_views, leet_word, rot13, skeleton
from tollhouse.injection.patterns import loosen, squeeze
from tollhouse.injection.policy import InjectionRule
from tollhouse.injection.smuggle import decode_base64, decode_hex, invisibles
from tollhouse.normalize import normalize

__all__ = ["Match", "Matcher"]

Match = dict[int, str]
"""Rule index → how it was seen: "" (plain text) or the view, e.g. "base64", "leetspeak"."""

_MAX_DEPTH = 2  # decoded payloads inside decoded payloads, no deeper
_MAX_DECODES = 16  # candidates decoded per text: bounds the work an attacker can cause
# Sentence punctuation becomes a word break; symbols that can be part of a token (base64 "+/=",
# leetspeak "@$!|", delimiters "-_#*~") stay, and such tokens are split again for anchors.
_BREAKS = bytes.maketrans(b".,;:?\"'()[]{}<>`", b" " * 16)
_NON_ALNUM = re.compile(r"[^\w]+")
_B64 = re.compile(r"[A-Za-z0-9+/_-]{16,}={0,2}")
_B64_TOKEN = re.compile(r"[a-z0-9+/_-]+={0,2}")
_HEX_TOKEN = re.compile(r"(?:\\x[0-9a-f]{2})+|(?:[0-9a-f]{2})+")
# A flood starts where a run of blanks starts: without the lookbehind, a long run of spaces
# between two newlines is re-read from each of its positions (quadratic).
_NEWLINE_FLOOD = re.compile(r"(?<![ \t])(?:[ \t]*\n){%d,}")
# How far one anchored match may read: an injection phrase is a sentence, not a chapter, and
# a bound keeps one regex call (which holds the GIL) short whatever the rule.
_MATCH_REACH = 4096
_SPLIT_PIECE = 16384
_SPACED_REACH = 256  # a spaced-out instruction is a sentence: "i g n o r e  a l l ..."
_FLOOD_REACH = 8192  # a newline flood of blank lines padded with spaces is still one


def _words(skel: str) -> list[str]:
    # "surrogatepass": JSON may carry a lone surrogate ("\\ud83d" of a cut emoji); it is a word
    # character like any other here, not a reason to fail the scan.
    raw = skel.encode("utf-8", "surrogatepass").translate(_BREAKS)
    return raw.decode("utf-8", "surrogatepass").split()


def _keys(uniq: set[str]) -> set[str]:
    """Every word's first 3, 4 and 5 characters: what anchor keys are looked up against."""
    parts = set(uniq)
    for w in uniq:
        if not w.isalnum():
            # A long word is split in overlapping pieces (one split of a megabyte holds the
            # GIL throughout); the overlap keeps every part's first KEY_LENGTH characters.
            for i in range(0, len(w), _SPLIT_PIECE):
                piece = w[i : i + _SPLIT_PIECE + KEY_LENGTH]
                parts.update(p for p in _NON_ALNUM.split(piece) if p)
    keys = {w[:KEY_LENGTH] for w in parts}
    keys.update({w[:4] for w in parts})
    keys.update({w[:3] for w in parts})
    return keys


def _needles(key: str, literals: set[str]) -> list[str]:
    if len(key) >= KEY_LENGTH or any(
        len(lit) > len(key) and lit[len(key)].isalnum() for lit in literals
    ):
        return [key]  # the key is a prefix of longer words: find the key itself
    out = {lit[: len(key) + 1] for lit in literals if len(lit) > len(key)}
    if key in literals:  # the whole word followed by whitespace
        out.update(key + ws for ws in " \n\t")
    return sorted(out)


class Matcher:
    """All rules of a pack compiled for scanning. Thread-safe: nothing mutable is shared."""

    def __init__(self, rules: tuple[InjectionRule, ...]) -> None:
        self.rules = rules
        self._det: dict[str, list[int]] = {}
        self._pats: list[re.Pattern[str]] = []
        self._pat_rule: list[int] = []
        self._lit_pids: dict[str, list[int]] = {}  # literal → patterns that start with it
        self._keyed: dict[str, set[str]] = {}  # word key → literals
        self._heads: dict[str, set[str]] = {}  # first characters → literals found without a key
        self._unanchored: list[int] = []  # patterns with no literal start: full search
        self._squeezed: list[re.Pattern[str]] = []  # per pattern, for the spaced-letters view
        for i, rule in enumerate(rules):
            if rule.detector:
                self._det.setdefault(rule.detector, []).append(i)
            for pattern in rule.patterns:
                pid = len(self._pats)
                source = loosen(pattern)
                self._pats.append(re.compile(source, re.MULTILINE))
                self._pat_rule.append(i)
                self._squeezed.append(re.compile(squeeze(pattern)))
                found: list[Anchor] | None = anchors(source)
                if found is None:
                    self._unanchored.append(pid)
                    continue
                for a in found:
                    self._lit_pids.setdefault(a.literal, []).append(pid)
                    if a.key is None:
                        head = a.literal[:2] if a.literal.isascii() else a.literal[:1]
                        self._heads.setdefault(head, set()).add(a.literal)
                    else:
                        self._keyed.setdefault(a.key, set()).add(a.literal)
        # What to find for each key: the key itself, or for a word shorter than the key length
        # ("i", "do") the word plus the character after it, so "i " is found but not every "i".
        self._needles = {k: _needles(k, v) for k, v in self._keyed.items()}
        self._key_set = frozenset(self._keyed)
        # One alternation per key (and per head) of every pattern anchored there, compiled now:
        # a scan tries it once at each place the key occurs, and only when it matches are the
        # single patterns tried to learn which rules fired.
        self._key_re = {k: self._group(v) for k, v in self._keyed.items()}
        self._head_re = {h: self._group(v) for h, v in self._heads.items()}
        self._first_chars: dict[str, list[str]] = {}
        for head in sorted(self._heads):
            self._first_chars.setdefault(head[0], []).append(head)
        self._spaced_heads, self._spaced_unanchored = self._spaced_index()
        self._rot_triggers = frozenset(
            rot13(t.lower()).split()[0]
            for i in self.det("rot13")
            for t in rules[i].params["triggers"]
        )
        floods = self.det("delimiter_flood")
        self._newline_re = (
            re.compile(_NEWLINE_FLOOD.pattern % rules[floods[0]].params["min_newlines"])
            if floods
            else None
        )

    def _group(self, literals: set[str]) -> tuple[re.Pattern[str], list[int]]:
        pids = sorted({pid for lit in literals for pid in self._lit_pids[lit]})
        source = "|".join(f"(?:{self._pats[pid].pattern})" for pid in pids)
        return re.compile(source, re.MULTILINE), pids

    def det(self, name: str) -> list[int]:
        """Indices of the rules that use built-in detector ``name``."""
        return self._det.get(name, [])

    def scan(self, text: str, _depth: int = 0) -> Match:
        """Every rule that ``text`` triggers, with the view it was seen in."""
        hits: Match = {}
        norm = normalize(text)
        if norm.removed_invisible:
            self._invisibles(text, hits, _depth)
        skel = skeleton(norm.text)
        sk = skel.text
        words = _words(sk)
        uniq = set(words)
        self._rules(sk, uniq, hits, "")
        for i in self.det("mixed_script"):
            if skel.mixed_script_words >= self.rules[i].params["min_words"]:
                hits.setdefault(i, "")
        self._structure(norm.text, sk, words, uniq, hits, _depth)
        if self.det("leetspeak") and self._looks_leet(uniq):
            for view in leet_views(sk):
                self._rules(view, set(_words(view)), hits, "leetspeak")
        if self.det("spaced_letters") and self._squeezed and _has_spaced_run(words, uniq):
            for run in despace(sk):
                self._spaced_run(run, hits)
        if self._rot_triggers and not self._rot_triggers.isdisjoint(uniq):
            view = rot13(sk)
            self._rules(view, set(_words(view)), hits, "rot13")
        return hits

    def _spaced_index(self) -> tuple[dict[str, tuple[re.Pattern[str], list[int]]], list[int]]:
        """Squeezed patterns by the first two characters of their literal starts.

        A joined run (``ignoreallprevious``) has no words to look anchors up by, and one
        alternation of every pattern tried at each of its positions costs ~25 us a character:
        seconds for a long run of spaced digits. ``str.find`` of ~200 two-letter heads is
        C speed; patterns are matched only where their head occurs.
        """
        by_head: dict[str, set[int]] = {}
        unanchored: list[int] = []
        for pid, pattern in enumerate(self._squeezed):
            found = anchors(pattern.pattern)
            if found is None:
                unanchored.append(pid)
                continue
            for a in found:
                by_head.setdefault(a.literal[:2], set()).add(pid)
        heads = {
            head: (
                re.compile("|".join(f"(?:{self._squeezed[p].pattern})" for p in sorted(pids))),
                sorted(pids),
            )
            for head, pids in by_head.items()
        }
        return heads, unanchored

    def _spaced_run(self, run: str, hits: Match) -> None:
        """Rules matching a joined run of spaced-out letters (the ``spaced_letters`` view)."""
        via = "spaced_letters"
        for head, (combined, pids) in self._spaced_heads.items():
            pending = [p for p in pids if self._pat_rule[p] not in hits]
            pos = run.find(head) if pending else -1
            while pos != -1:
                if combined.match(run, pos, pos + _SPACED_REACH):
                    for pid in pending:
                        if self._squeezed[pid].match(run, pos, pos + _SPACED_REACH):
                            self._hit(self._pat_rule[pid], via, hits)
                    pending = [p for p in pending if self._pat_rule[p] not in hits]
                    if not pending:
                        break
                pos = run.find(head, pos + 1)
        for pid in self._spaced_unanchored:
            if self._pat_rule[pid] not in hits and slices.search(self._squeezed[pid], run):
                self._hit(self._pat_rule[pid], via, hits)

    def _hit(self, i: int, via: str, hits: Match) -> None:
        """Record rule ``i``; a hit first seen in a decoded view also fires that view's detector."""
        if i in hits:
            return
        hits[i] = via
        for d in self.det(via.split("+")[0]) if via else ():
            hits.setdefault(d, via)

    def _rules(self, sk: str, uniq: set[str], hits: Match, via: str) -> None:
        """Match every pattern whose anchor occurs in ``sk``, only where it occurs."""
        for key in sorted(self._key_set.intersection(_keys(uniq))):
            for needle in self._needles[key]:
                self._at(sk, needle, self._key_re[key], hits, via, word=True)
        ascii_text = sk.isascii()
        for first, heads in self._first_chars.items():
            if (ascii_text and not first.isascii()) or first not in sk:
                continue
            for head in heads:
                if head in sk:
                    self._at(sk, head, self._head_re[head], hits, via, word=False)
        for pid in self._unanchored:
            if self._pat_rule[pid] not in hits and slices.search(self._pats[pid], sk):
                self._hit(self._pat_rule[pid], via, hits)

    def _at(
        self,
        sk: str,
        needle: str,
        group: tuple[re.Pattern[str], list[int]],
        hits: Match,
        via: str,
        word: bool,
    ) -> None:
        """Where ``needle`` occurs, try the group's alternation; on a match, each pattern.

        Once a rule has fired it is not tried again, and neither is the alternation (one
        branch that already matched would match again at every later position: a long run of
        ``\\n`` then costs quadratic time); the rules still pending are tried one by one.
        """
        combined, pids = group
        word = word and needle[0].isascii()
        pending = [pid for pid in pids if self._pat_rule[pid] not in hits]
        pos = sk.find(needle) if pending else -1
        while pos != -1:
            # A word-led anchor must start a word; checking that here saves most matches.
            if not (word and pos and sk[pos - 1].isalnum()) and (
                len(pending) < len(pids) or combined.match(sk, pos, pos + _MATCH_REACH)
            ):
                for pid in pending:
                    rule = self._pat_rule[pid]
                    if rule not in hits and self._pats[pid].match(sk, pos, pos + _MATCH_REACH):
                        self._hit(rule, via, hits)
                pending = [pid for pid in pending if self._pat_rule[pid] not in hits]
                if not pending:
                    return
            pos = sk.find(needle, pos + 1)

    def _looks_leet(self, uniq: set[str]) -> bool:
        """True when some word mixing digits/symbols and letters reads as a rule anchor."""
        return any(
            not self._key_set.isdisjoint(_keys({leet_word(w), leet_word(w, "l")}))
            for w in uniq
            if not w.isalpha() and not w.isdigit() and any(c.isalpha() for c in w)
        )

    def _structure(
        self, norm: str, sk: str, words: list[str], uniq: set[str], hits: Match, depth: int
    ) -> None:
        """Repetition, floods and encoded payloads, found from the word list."""
        for i in self.det("repetition"):
            need = self.rules[i].params["min_repeats"]
            if len(words) >= need and sum(map(operator.eq, words, words[1:])) >= need - 1:
                run = best = 1
                for a, b in itertools.pairwise(words):
                    run = run + 1 if a == b and a.isalpha() else 1
                    best = max(best, run)
                if best >= need:
                    hits.setdefault(i, "")
        long_words = [w for w in uniq if len(w) >= 16]
        for i in self.det("delimiter_flood"):
            n = self.rules[i].params["min_run"]
            flood = (w for w in long_words if len(w) >= n and not w[0].isalnum())
            if any(w == w[0] * len(w) for w in flood) or (
                self._newline_re is not None
                and sk.count("\n") >= self.rules[i].params["min_newlines"]
                and slices.search(self._newline_re, norm, overlap=_FLOOD_REACH)
            ):
                hits.setdefault(i, "")
        if not long_words or not (self.det("base64") or self.det("hex")) or depth >= _MAX_DEPTH:
            return
        decodes = 0
        same_length = len(norm) == len(sk)
        for w in long_words:
            if decodes >= _MAX_DECODES:
                break
            if self.det("hex") and _HEX_TOKEN.fullmatch(w):
                decodes += 1
                payload = decode_hex(w)
                if payload:
                    self._decoded(payload, "hex", hits, depth)
                continue
            if not self.det("base64") or not _B64_TOKEN.fullmatch(w):
                continue
            decodes += 1
            if same_length:  # the skeleton is case-folded: take the token from the normalized text
                pos = sk.find(w)
                token = norm[pos : pos + len(w)]
                payload = decode_base64(token)
            else:
                found = next(
                    (
                        m.group()
                        for m in slices.finditer(_B64, norm, overlap=len(w) + 8)
                        if m.group().lower() == w
                    ),
                    None,
                )
                payload = decode_base64(found) if found else None
            if payload:
                self._decoded(payload, "base64", hits, depth)

    def _decoded(self, payload: str, via: str, hits: Match, depth: int) -> None:
        """Re-check a decoded payload; its pattern hits count, tagged with how it was hidden."""
        if depth >= _MAX_DEPTH:
            return
        for i, inner_via in self.scan(payload, depth + 1).items():
            if self.rules[i].patterns:
                self._hit(i, f"{via}+{inner_via}" if inner_via else via, hits)

    def _invisibles(self, raw: str, hits: Match, depth: int) -> None:
        inv = invisibles(raw)
        if inv.tags:
            for i in self.det("tag_characters"):
                hits.setdefault(i, "")
        for i in self.det("bidi_controls"):
            if inv.bidi >= self.rules[i].params["min_count"]:
                hits.setdefault(i, "")
        for i in self.det("invisible_characters"):
            params = self.rules[i].params
            count = inv.in_word if params["in_word"] else inv.zero_width + inv.in_word
            if count >= params["min_count"]:
                hits.setdefault(i, "")
        if inv.tag_payload.strip():
            self._decoded(inv.tag_payload, "tag_characters", hits, depth)


def _has_spaced_run(words: list[str], uniq: set[str], run: int = 6) -> bool:
    """True for ``run`` one-letter words in a row (``i g n o r e``) or ``i-g-n-o-r-e`` tokens."""
    try:
        lengths = bytes(map(len, words))
    except ValueError:  # a word longer than 255 characters
        lengths = bytes(min(len(w), 255) for w in words)
    if b"\x01" * run in lengths:
        return True
    return any(
        len(w) >= 2 * run - 1 and w[1] in "-_*/" and w[3] == w[1] and w[5] == w[1]
        for w in uniq
        if len(w) >= 11
    )
