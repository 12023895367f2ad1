"""Keys split into fragments: "part one: ghp_abc… part two: …xyz, join them".

A pass over all the segments of an exchange, after the per-segment detection. It looks for the
*head* of a key (a known prefix with fewer characters than the format has), then reads ahead a
bounded number of tokens of the format's alphabet, in the same segment or the next few, and
joins them in order. The joined key counts only if it validates: the exact length (or the
format's structure) and, where the format has one, its checksum; for formats without a checksum
the joined body must also look random (digits and letters), so filler words never make a key.

Linear: each head reads at most ``_MAX_TOKENS`` tokens, each found by a search bounded to
``_GAP`` characters, and a head's search stops at the next head (prefixes are made of the
alphabet's characters). No combinations are tried: fragments are the random-looking tokens
that follow the head, in order (a second pass over every token, for checksum formats, catches
keys written in short groups "ghp_ab12 cd34 …").
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from tollhouse.dlp.prefilter import build_prefilter

__all__ = [
    "SPLIT_FORMATS",
    "SplitFinder",
    "SplitFormat",
    "SplitKey",
    "github_checksum",
    "merge_fragments",
]

_GAP = 200  # characters of filler allowed between two fragments ("part two:", quotes, " + ")
_MAX_TOKENS = 24  # tokens read after a head, filler included
_MAX_SEGMENTS = 3  # later segments (messages) a key may continue into
_MAX_FRAGMENTS = 12  # head included
_MIN_PIECE = 4  # characters of a piece read without a checksum
_CHAR_CLASS = re.compile(r"a-z|A-Z|0-9")

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _base62(n: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = _B62[r] + out
    return out.rjust(6, "0")


def github_checksum(body: str) -> bool:
    """GitHub's (and npm's) token checksum: the last 6 base62 characters are the CRC32 of the
    30 random ones before them."""
    if len(body) != 36 or not body.isascii() or not body.isalnum():
        return False
    return _base62(zlib.crc32(body[:30].encode())) == body[30:]


def _random_mixed(body: str) -> bool:
    """A random body in a mixed-case alphabet: it has a digit, an upper and a lower letter."""
    return (
        any(c.isdigit() for c in body)
        and any(c.isupper() for c in body)
        and any(c.islower() for c in body)
    )


def _has_digit(body: str) -> bool:
    return any(c.isdigit() for c in body) and any(c.isalpha() for c in body)


@dataclass(frozen=True, slots=True)
class SplitFormat:
    """A key format with a distinctive prefix and a known length or structure."""

    entity: str
    name: str  # the secret rule it completes (tollhouse.dlp.secrets), for the policy's list
    prefixes: tuple[str, ...]
    alphabet: str  # a regex character class, e.g. "[A-Za-z0-9]"
    min_len: int  # of the body (after the prefix)
    max_len: int
    validate: Callable[[str], bool]  # on the body: length or structure, and randomness
    # The format's checksum, if it has one: a body that passes it may be joined from any
    # tokens (short groups, words), since a random join passes with odds of 1 in 2**32.
    checksum: Callable[[str], bool] | None = None
    fragment: str = r"[0-9]"  # what makes a token look like a piece of key, not a word
    # A short prefix that also starts words of code ("hf_model", "AIzaTest"): the head must
    # hold a random-looking piece of the key itself, not the prefix alone.
    weak: bool = False


def _structure(pattern: str, extra: Callable[[str], bool] = _random_mixed) -> Callable[[str], bool]:
    compiled = re.compile(pattern)
    return lambda body: compiled.fullmatch(body) is not None and extra(body)


# A digit, or an upper-case letter inside the token with lower-case ones: "Noted" or "Join"
# (a capitalized word) is filler, "xK2q" or "aBcD" a piece of key.
_MIXED = r"[0-9]|.[A-Z].*[a-z]|[a-z].*[A-Z]"
SPLIT_FORMATS: tuple[SplitFormat, ...] = (
    SplitFormat(
        "GITHUB_TOKEN",
        "github_token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        "[A-Za-z0-9]",
        36,
        36,
        _structure(r"[A-Za-z0-9]{36}"),
        github_checksum,
        _MIXED,
    ),
    SplitFormat(
        "NPM_TOKEN",
        "npm_token",
        ("npm_",),
        "[A-Za-z0-9]",
        36,
        36,
        _structure(r"[A-Za-z0-9]{36}"),
        github_checksum,
        _MIXED,
    ),
    SplitFormat(
        "GITHUB_TOKEN",
        "github_pat",
        ("github_pat_",),
        "[A-Za-z0-9_]",
        82,
        82,
        _structure(r"[A-Za-z0-9]{22}_[A-Za-z0-9]{59}"),
        fragment=_MIXED,
    ),
    SplitFormat(
        "AWS_ACCESS_KEY_ID",
        "aws_access_key_id",
        ("AKIA", "ASIA"),
        "[A-Z2-7]",
        16,
        16,
        _structure(r"[A-Z2-7]{16}", _has_digit),
        fragment=r"[2-7]|[A-Z]{4}",
    ),
    SplitFormat(
        "OPENAI_API_KEY",
        "openai_key",
        ("sk-proj-", "sk-svcacct-", "sk-admin-"),
        "[A-Za-z0-9_-]",
        124,
        156,
        _structure(
            r"(?:[A-Za-z0-9_-]{74}|[A-Za-z0-9_-]{58})T3BlbkFJ(?:[A-Za-z0-9_-]{74}|[A-Za-z0-9_-]{58})"
        ),
        fragment=_MIXED,
    ),
    SplitFormat(
        "ANTHROPIC_API_KEY",
        "anthropic_key",
        ("sk-ant-api03-", "sk-ant-admin01-"),
        "[A-Za-z0-9_-]",
        95,
        95,
        _structure(r"[A-Za-z0-9_-]{93}AA"),
        fragment=_MIXED,
    ),
    SplitFormat(
        "STRIPE_KEY",
        "stripe_key",
        ("sk_live_", "rk_live_"),
        "[A-Za-z0-9]",
        24,
        99,
        _structure(r"[A-Za-z0-9]{24}|[A-Za-z0-9]{99}"),
        fragment=_MIXED,
    ),
    SplitFormat(
        "SLACK_TOKEN",
        "slack_token",
        ("xoxb-", "xoxp-"),
        "[A-Za-z0-9-]",
        46,
        90,
        _structure(
            r"\d{10,13}-\d{10,13}-[A-Za-z0-9]{24}|\d{10,13}-\d{10,13}-\d{10,13}-[a-f0-9]{32}",
            _has_digit,
        ),
        fragment=_MIXED,
    ),
    SplitFormat(
        "GCP_API_KEY",
        "gcp_api_key",
        ("AIza",),
        "[A-Za-z0-9_-]",
        35,
        35,
        _structure(r"[A-Za-z0-9_-]{35}"),
        fragment=_MIXED,
        weak=True,
    ),
    SplitFormat(
        "GITLAB_TOKEN",
        "gitlab_token",
        ("glpat-",),
        "[A-Za-z0-9_-]",
        20,
        20,
        _structure(r"[A-Za-z0-9_-]{20}"),
        fragment=_MIXED,
    ),
    SplitFormat(
        "GROQ_API_KEY",
        "groq_key",
        ("gsk_",),
        "[A-Za-z0-9]",
        52,
        52,
        _structure(r"[A-Za-z0-9]{52}"),
        fragment=_MIXED,
        weak=True,
    ),
    SplitFormat(
        "HUGGINGFACE_TOKEN",
        "huggingface_token",
        ("hf_",),
        "[A-Za-z0-9]",
        34,
        34,
        _structure(r"[A-Za-z0-9]{34}", lambda b: sum(c.isupper() for c in b) >= 2),
        fragment=_MIXED,
        weak=True,
    ),
    SplitFormat(
        "DIGITALOCEAN_TOKEN",
        "digitalocean_token",
        ("dop_v1_", "doo_v1_", "dor_v1_"),
        "[a-f0-9]",
        64,
        64,
        _structure(r"[a-f0-9]{64}", _has_digit),
        fragment=r"[0-9]|[a-f]{8}",
    ),
    SplitFormat(
        "SHOPIFY_TOKEN",
        "shopify_token",
        ("shpat_", "shpss_", "shpca_", "shppa_"),
        "[a-fA-F0-9]",
        32,
        32,
        _structure(r"[a-fA-F0-9]{32}", _has_digit),
        fragment=r"[0-9]|[a-fA-F]{8}",
    ),
    SplitFormat(
        "GOOGLE_OAUTH_TOKEN",
        "google_oauth_client_secret",
        ("GOCSPX-",),
        "[A-Za-z0-9_-]",
        28,
        28,
        _structure(r"[A-Za-z0-9_-]{28}"),
        fragment=_MIXED,
    ),
    SplitFormat(
        "REPLICATE_API_TOKEN",
        "replicate_token",
        ("r8_",),
        "[A-Za-z0-9]",
        37,
        37,
        _structure(r"[A-Za-z0-9]{37}"),
        fragment=_MIXED,
        weak=True,
    ),
)
"""The formats whose fragments are joined."""


@dataclass(frozen=True, slots=True)
class SplitKey:
    """A key found in pieces: ``fragments`` are (segment index, start, end), head first."""

    entity: str
    name: str
    fragments: tuple[tuple[int, int, int], ...]


def _starts_word(text: str, at: int) -> bool:
    """No letter or digit right before ``at``, or one that ends an escape ("\\\\nghp_…")."""
    if at == 0 or not text[at - 1].isascii() or not text[at - 1].isalnum():
        return True
    return at >= 2 and text[at - 2] == "\\" and text[at - 1] in "nrt"


class _Compiled:
    def __init__(self, fmt: SplitFormat) -> None:
        self.fmt = fmt
        prefixes = "|".join(re.escape(p) for p in sorted(fmt.prefixes, key=len, reverse=True))
        self.run = re.compile(rf"{fmt.alphabet}{{0,{fmt.max_len}}}+")  # the head's own piece
        self.token = re.compile(rf"{fmt.alphabet}{{1,{fmt.max_len + 1}}}+")
        self.fragment = re.compile(fmt.fragment)
        self.starts_head = re.compile(rf"(?:{prefixes})")


class SplitFinder:
    """Finds split keys of the given formats (all, or those whose entity or rule is named)."""

    def __init__(self, names: Iterable[str] | None = None) -> None:
        wanted = set(names) if names is not None else None
        self._formats = [
            _Compiled(f)
            for f in SPLIT_FORMATS
            if wanted is None or f.entity in wanted or f.name in wanted
        ]
        literals = ["lit:" + p for c in self._formats for p in c.fmt.prefixes]
        self._prefilter = build_prefilter([], literals) if literals else None

    def find(self, texts: Sequence[str]) -> list[SplitKey]:
        """Keys joined from fragments across ``texts`` (the segments, in order)."""
        keys: list[SplitKey] = []
        for seg, text in enumerate(texts):
            for c, at, length in self._heads(text):
                key = self._join(c, texts, seg, at, length)
                if key is not None:
                    keys.append(key)
        return keys

    def _heads(self, text: str) -> Iterator[tuple[_Compiled, int, int]]:
        """Where a prefix starts a word: (format, offset, prefix length). One hyperscan pass
        for ASCII text when hyperscan is present, else ``str.find`` per prefix (a regex
        alternation of prefixes would be tried at every position of a 100 KB prompt)."""
        scan = self._prefilter.scan(text.encode()) if self._prefilter and text.isascii() else None
        for c in self._formats:
            for prefix in c.fmt.prefixes:
                if scan is not None:
                    starts = [a for a, _ in scan.literals.get("lit:" + prefix, ())]
                else:
                    starts = []
                    at = text.find(prefix)
                    while at != -1:
                        starts.append(at)
                        at = text.find(prefix, at + 1)
                for at in starts:
                    if _starts_word(text, at):
                        yield c, at, len(prefix)

    def _join(
        self, c: _Compiled, texts: Sequence[str], seg: int, start: int, prefix: int
    ) -> SplitKey | None:
        fmt = c.fmt
        text = texts[seg]
        run = c.run.match(text, start + prefix)
        end = run.end() if run else start + prefix
        body = text[start + prefix : end]
        if len(body) >= fmt.min_len:
            return None  # whole (the per-segment rules judge it), or too long to be this key
        if fmt.weak and (len(body) < 4 or not c.fragment.search(body)):
            return None
        head = (seg, start, end)
        found = self._walk(c, texts, head, body, every_token=False)
        if found is None and fmt.checksum is not None:
            found = self._walk(c, texts, head, body, every_token=True)
        return None if found is None else SplitKey(fmt.entity, fmt.name, found)

    @staticmethod
    def _piece(c: _Compiled, value: str) -> bool:
        """A token that looks like a piece of key: random-looking, at least 4 characters (so
        the digits and letters of code, "{36}" or "[A-Z]", do not add up), and not a regex
        character class ("A-Za-z0-9_-")."""
        return (
            len(value) >= _MIN_PIECE
            and c.fragment.search(value) is not None
            and _CHAR_CLASS.search(value) is None
        )

    @staticmethod
    def _valid(fmt: SplitFormat, body: str, every_token: bool) -> bool:
        if fmt.checksum is not None and fmt.checksum(body):
            return True
        return not every_token and fmt.validate(body)

    def _walk(
        self,
        c: _Compiled,
        texts: Sequence[str],
        head: tuple[int, int, int],
        body: str,
        every_token: bool,
    ) -> tuple[tuple[int, int, int], ...] | None:
        fmt = c.fmt
        fragments = [head]
        seg, pos = head[0], head[2]
        tokens = segments = 0
        while tokens < _MAX_TOKENS and len(fragments) < _MAX_FRAGMENTS:
            text = texts[seg]
            m = c.token.search(text, pos, min(len(text), pos + _GAP + fmt.max_len + 1))
            if m is None or m.start() - pos > _GAP:
                if len(text) - pos > _GAP:
                    return None  # too much filler after the last fragment
                seg, pos, segments = seg + 1, 0, segments + 1
                if seg >= len(texts) or segments > _MAX_SEGMENTS:
                    return None
                continue
            tokens += 1
            pos = m.end()
            value = m.group()
            if c.starts_head.match(value):
                return None  # another key begins: this one ended unfinished
            if not every_token and not self._piece(c, value):
                continue  # a word of the filler ("part", "two", "join")
            body += value
            fragments.append((seg, m.start(), m.end()))
            if len(body) > fmt.max_len:
                return None
            if len(body) >= fmt.min_len and self._valid(fmt, body, every_token):
                return tuple(fragments)
        return None


class _Span(Protocol):
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


def merge_fragments[S: _Span](found: list[S], fragments: list[S]) -> list[S]:
    """``found`` with the fragment findings added. A fragment that overlaps other findings takes
    their union (so that a rewrite, which needs disjoint spans, covers every character of both):
    the fragment's entity wins, since the key is worse than what the per-segment rules saw,
    unless the other finding is blocked."""
    if not fragments:
        return found
    out: list[S] = []
    flags: list[bool] = []  # out[i] is (or absorbed) a fragment
    tagged = [(f, False) for f in found] + [(f, True) for f in fragments]
    for f, frag in sorted(tagged, key=lambda t: (t[0].start, -t[0].end)):
        if out and f.start < out[-1].end:
            last = out[-1]
            base = f if frag and not flags[-1] else last
            if getattr(last, "action", "") == "block" or getattr(f, "action", "") == "block":
                base = last if getattr(last, "action", "") == "block" else f  # never weaker
            out[-1] = dataclasses.replace(  # type: ignore[type-var]
                base, start=min(last.start, f.start), end=max(last.end, f.end)
            )
            flags[-1] = flags[-1] or frag
            continue
        out.append(f)
        flags.append(frag)
    return out
