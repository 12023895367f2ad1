"""The engine's fast paths give the same findings as the slow ones they replace.

- the hyperscan prefilter (ASCII text) vs the pure-Python trigger windows;
- both vs presidio's way: every pattern of every rule run over the whole text;
- long-token search, overlap resolution and dead-pattern pruning vs their plain versions;
- the CJK fast path of normalization vs NFKC.
"""

from __future__ import annotations

import itertools
import random
import re
import unicodedata
from collections.abc import Iterator

import pytest

from tests.unit.dlp.conftest import ROOT, iban, luhn_card
from tollhouse.dlp import DlpScanner, load_dlp_policy
from tollhouse.dlp import prefilter as prefilter_module
from tollhouse.dlp.engine import Detection, Detector
from tollhouse.dlp.prefilter import token_runs
from tollhouse.dlp.recognizers import phone_rule, presidio_rule, secret_rules
from tollhouse.dlp.scanner import resolve_overlaps
from tollhouse.normalize import is_invisible, normalize

PIECES = [
    luhn_card("4539"),
    "4111 1111 1111 1111",
    "536-22-8741",
    "078-05-1120",
    "+1 (415) 555-0134",
    "+44 20 7946 0958",
    "943 476 5919",
    "DE89 3704 0044 0532 0130 00",
    iban("GB", "WEST12345698765432"),
    "10.20.30.40",
    "2001:db8::1",
    "fe80::1ff:fe23:4567:890a",
    "::ffff:10.0.0.1",
    "1:2:3:4:5:6:7:8",
    "aa:bb:cc:dd:ee:ff",
    "AB123456C",
    "12345678Z",
    "X1234567L",
    "RSSMRA85T10A562S",
    "44051401359",
    "85082712345",
    "8001015009087",
    "900101-1234567",
    "4444 44444 4",
    "123 456 782",
    "1234 5678 9012",
    "ann@acme.io",
    "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    "0x" + "ab12" * 10,
    "2024-05-01T10:04:05.014Z",
    "10:04:05",
    "9fceb02d0ae598e95dc970b74767f19372d61af8",
    "123e4567-e89b-12d3-a456-426614174000",
    "ssn",
    "phone",
    "card",
    "iban",
    "nhs",
    "medicare",
    "aadhaar",
    "pesel",
    "EMP-123456",
]
NOISE = "0123456789" * 4 + " -./():+" + "abcdefXYZ" + "\n"


def adversarial_texts(count: int, seed: int) -> Iterator[str]:
    """Texts of real entities glued to digit soup, separators and each other."""
    rng = random.Random(seed)
    for _ in range(count):
        parts = []
        for _ in range(rng.randrange(1, 12)):
            if rng.random() < 0.5:
                parts.append(rng.choice(PIECES))
            else:
                parts.append("".join(rng.choice(NOISE) for _ in range(rng.randrange(1, 40))))
            parts.append(rng.choice([" ", "", "\n", ", ", ":", "-", "."]))
        yield "".join(parts)


def findings(scanner: DlpScanner, text: str) -> list[tuple[str, int, int, float, str]]:
    return sorted(
        (f.entity_type, f.start, f.end, round(f.score, 3), f.detector)
        for f in scanner.scan_text(text)
    )


@pytest.fixture(scope="module")
def trigger_scanner(monkeypatch_module: pytest.MonkeyPatch) -> DlpScanner:
    """The project policy scanned without hyperscan: pure-Python trigger windows."""
    monkeypatch_module.setattr(prefilter_module, "hyperscan", None)
    scanner = DlpScanner(load_dlp_policy(ROOT / "rules" / "dlp.yaml"))
    assert not scanner.detector.uses_prefilter
    return scanner


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_prefilter_and_trigger_paths_agree(
    scanner: DlpScanner, trigger_scanner: DlpScanner
) -> None:
    if not scanner.detector.uses_prefilter:
        pytest.skip("hyperscan is not installed: only the trigger path exists")
    for text in adversarial_texts(600, seed=1):
        assert findings(scanner, text) == findings(trigger_scanner, text), text


class _FullText(Detector):
    """Presidio's way: every pattern of every rule over the whole text, the same confirmation."""

    def _detect_plain(
        self, text: str, base64_runs: list[tuple[int, int]] | None = None
    ) -> list[Detection]:
        best: dict[tuple[str, int, int], Detection] = {}
        for rule in self.rules:
            for pattern, base in rule.patterns:
                for m in pattern.finditer(text):
                    self._keep(best, text, rule, m, base)
        return list(best.values())


@pytest.mark.parametrize("name", ["scanner", "trigger_scanner"])
def test_pii_findings_equal_full_text_patterns(name: str, request: pytest.FixtureRequest) -> None:
    scanner: DlpScanner = request.getfixturevalue(name)
    d = scanner.detector
    reference = _FullText(d.rules, d.min_score, decode_base64=False)
    reference.allow_values, reference.allow_patterns = d.allow_values, d.allow_patterns
    pii = {r.name for r in d.rules if r.group == "pii"}
    for text in adversarial_texts(400, seed=2):
        want = sorted(
            (x.entity, x.start, x.end, round(x.score, 3), x.rule.name)
            for x in resolve_overlaps(reference.detect(text))
            if x.rule.name in pii
        )
        got = [f for f in findings(scanner, text) if f[4] in pii]
        assert got == want, text


def test_ipv6_in_full_and_compressed_forms(scanner: DlpScanner) -> None:
    for address in ("1:2:3:4:5:6:7:8", "2001:db8:85a3:0:0:8a2e:370:7334", "fe80::1", "::1"):
        text = f"host {address} is down"
        assert [(f.entity_type, text[f.start : f.end]) for f in scanner.scan_text(text)] == [
            ("IP_ADDRESS", address)
        ]
    assert scanner.scan_text("at 10:04:05 and 2024-05-01T10:04:05.014Z") == []


def test_token_runs_equal_the_regex() -> None:
    token = re.compile(r"[A-Za-z0-9+/_-]{24,}={0,2}")
    rng = random.Random(3)
    alphabet = "aZ09+/_-=" * 8 + " .:\n"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 300)))
        assert list(token_runs(text)) == [m.span() for m in token.finditer(text)]


def test_resolve_overlaps_keeps_what_the_pairwise_check_keeps() -> None:
    rules = [secret_rules()[0], phone_rule()]
    rng = random.Random(4)
    for _ in range(2000):
        found = []
        for _ in range(rng.randrange(0, 12)):
            start = rng.randrange(60)
            found.append(
                Detection(
                    start,
                    start + rng.randrange(1, 15),
                    "X",
                    rng.choice([0.5, 0.6, 0.9, 1.0]),
                    rng.choice(rules),
                )
            )
        ranked = sorted(
            found, key=lambda d: (-d.score, -(d.end - d.start), d.rule.group != "secret", d.start)
        )
        kept: list[Detection] = []
        for d in ranked:
            if all(d.end <= k.start or d.start >= k.end for k in kept):
                kept.append(d)
        assert resolve_overlaps(found) == sorted(kept, key=lambda d: d.start)
        assert all(a.end <= b.start for a, b in itertools.pairwise(resolve_overlaps(found)))


def test_patterns_that_cannot_reach_min_score_are_pruned() -> None:
    ssn = presidio_rule("UsSsnRecognizer")  # four patterns score 0.05, one 0.5; no checksum
    strict = Detector([ssn], min_score=0.5).rules[0]
    assert [score for _, score in strict.patterns] == [0.5]
    lenient = Detector([ssn], min_score=0.4).rules[0]  # 0.05 + context reaches 0.4
    assert len(lenient.patterns) == len(ssn.patterns)
    aadhaar = presidio_rule("InAadhaarRecognizer")  # a checksum lifts any match to 1.0
    assert Detector([aadhaar], min_score=0.9).rules[0].patterns == aadhaar.patterns


# --- normalization of CJK text ---------------------------------------------------------------


def _wide(text: str) -> str:
    """``text`` in full-width forms, as CJK input methods type it (space: ideographic)."""
    return "".join("\u3000" if c == " " else chr(ord(c) + 0xFEE0) for c in text)


_CJK = (
    "请帮我总结会议记录中文東京の天気안녕하세요。、「」"
    + _wide(",()!:;? 019AZaz@.-")  # full-width punctuation, digits, letters
    + "\uff76\uff8a\uff71\uff9e\uff9f"  # half-width katakana, voiced marks (compose across)
    + "\u0301\u3099\u309a"  # combining marks
    + "\u2013\u2212\u200b\ufeff"  # dashes, invisibles
    + "abc 12@.-"
)


def _reference(text: str) -> str:
    visible = "".join(c for c in text if not is_invisible(c))
    return re.sub(
        "[\u2010-\u2015\u2212\u2043\ufe58\ufe63\uff0d]", "-", unicodedata.normalize("NFKC", visible)
    )


@pytest.mark.parametrize("seed", range(30))
def test_cjk_normalization_equals_nfkc_and_maps_back(seed: int) -> None:
    rng = random.Random(seed)
    weights = [20 if "\u4e00" <= c <= "\ud7ff" else 1 for c in _CJK]
    length = rng.randint(0, 300) if seed % 3 else rng.randint(2000, 6000)
    text = "".join(rng.choices(_CJK, weights, k=length))
    n = normalize(text)
    assert n.text == _reference(text)
    prev = (0, 0)
    for i in range(len(n.text)):
        a, b = n.span_to_original(i, i + 1)
        assert 0 <= a < b <= len(text) and (a, b) >= prev
        prev = (a, b)
        assert n.text[i] in _reference(text[a:b])


def test_full_width_cjk_text_maps_one_to_one() -> None:
    text = ("请联系 " + _wide("ann@acme.io,") + "电话" + _wide(":+44 20 7946 0958!")) * 50
    n = normalize(text)
    assert n.text == _reference(text)
    assert len(n.text) == len(text)
    assert n.span_to_original(10, 40) == (10, 40)
