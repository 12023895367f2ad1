"""Phone numbers: written the local way in the policy's regions, checked with phonenumbers."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from tollhouse.dlp import DlpScanner, PolicyError, load_dlp_policy
from tollhouse.dlp.pii import expand_regions, phone_rules, phone_tier
from tollhouse.dlp.recognizers import builtin_rules

ROOT = Path(__file__).resolve().parents[3]


def phones(scanner: DlpScanner, text: str) -> list[str]:
    return [
        text[f.start : f.end] for f in scanner.scan_text(text) if f.entity_type == "PHONE_NUMBER"
    ]


# Written the way the country prints its numbers: found with no phone word.
LOCAL = [
    "07700 900123",  # UK mobile (a drama number: possible, not assigned)
    "020 7946 0958",  # London
    "01.84.17.61.18",  # France, dots
    "06 12 34 56 78",  # France, mobile
    "(02) 9876 5432",  # Australia
    "0412 345 678",  # Australia, mobile
    "030 901820",  # Berlin
    "0176 12345678",  # German mobile
    "03-1234-5678",  # Tokyo
    "098765 43210",  # India
    "(11) 91234-5678",  # São Paulo
    "(415) 555-0137",  # US
    "415-555-0137",
    "23 45 67 89",  # Denmark, 8 digits
    "2345 6789",  # 8 digits with a space
]


@pytest.mark.parametrize("number", LOCAL)
def test_local_formats_are_found(scanner: DlpScanner, number: str) -> None:
    assert phones(scanner, f"you can reach Sam at {number} after six") == [number]
    assert phones(scanner, f"Sam: {number}") == [number]


@pytest.mark.parametrize(
    "number", ["+44 7911 123456", "+33 1 84 17 61 18", "0049 30 901820", "+61 2 9876 5432"]
)
def test_international_formats_are_found(scanner: DlpScanner, number: str) -> None:
    assert phones(scanner, f"Sam: {number}.") == [number]


@pytest.mark.parametrize("number", ["555-0100", "612 345 678", "12 345678"])
def test_other_shapes_need_a_phone_word(scanner: DlpScanner, number: str) -> None:
    assert phones(scanner, f"the value {number} again") == []
    assert phones(scanner, f"call me on {number} tomorrow") == [number]


@pytest.mark.parametrize(
    "text",
    [
        "order 030 901820 shipped",
        "ticket 415-555-0137",
        "invoice 0412 345 678",
        "on 12.03.2024 10 30 we met",
        "dates 2024-05-01 and 01/02/2023",
        "lat,lon 50.895486,4.341",
        "version 1.22.333 released",
        "server 192.168.100.200 is up",
        "SSN 536-22-8741",
        "Copyright 2019-2024",
        "pi is 3.14159 26535",
        "between 100 200 300 items",
        "+99 1234 5678 9",  # no such country code
    ],
)
def test_numbers_that_are_something_else(scanner: DlpScanner, text: str) -> None:
    assert phones(scanner, text) == []


def test_benign_corpus_has_few_phone_numbers(scanner: DlpScanner) -> None:
    """Plain numbers, dates, versions, sizes, prices, IDs and tables of numbers: a realistic
    mix of what prompts hold. Under 1% of these may look like a local phone number."""
    rng = random.Random(7)
    texts = []
    for _ in range(1000):
        a, b, c = rng.randint(0, 999), rng.randint(0, 9999), rng.randint(0, 99999)
        texts += [
            f"took {a} ms for {b} rows",
            f"version {rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}",
            f"released {rng.randint(2000, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            f"price {a}.{rng.randint(0, 99):02d} EUR, qty {b}",
            f"id {c}{b}",
            f"{a} {b} {c}",
            f"row {a}, {b}, {c}",
            f"memory {b} MB of {c} MB",
            f"x = {rng.uniform(-1000, 1000):.6f}",
            f"build {c}.{a}",
            f"{rng.randint(1, 28)}/{rng.randint(1, 12)}/{rng.randint(2000, 2030)}",
            f"port {b} and {c}",
        ]
    flagged = [t for t in texts if phones(scanner, t)]
    assert len(flagged) / len(texts) < 0.01, flagged[:20]


def test_regions_decide_what_counts_alone() -> None:
    assert phone_tier("07700 900123", expand_regions(["GB"])) == 2
    assert phone_tier("07700 900123", expand_regions(["US"])) == 0
    assert phone_tier("(415) 555-0137", expand_regions(["US"])) == 2
    assert phone_tier("+44 7700 900123", ()) == 0  # possible, not valid: a drama number
    assert phone_tier("+44 20 7946 0958", ()) == 3  # "+": its own country decides
    assert expand_regions(["EU", "UK", "gb"])[-1] == "GB"
    assert len(expand_regions(["EU"])) == 27
    strong, _weak = phone_rules(["US"])
    assert strong.validate is not None and strong.validate("020 7946 0958") is False
    rules = {r.name: r for r in builtin_rules(phone_regions=["GB"])}
    assert rules["PhoneRecognizer"].validate("020 7946 0958") is None  # found, score 0.5


def test_policy_names_the_regions(tmp_path: Path) -> None:
    assert load_dlp_policy(ROOT / "rules" / "dlp.yaml").phone_regions == (
        "EU", "GB", "US", "CA", "AU", "IN", "BR", "JP",
    )  # fmt: skip
    base = "version: 1\npolicies:\n  p:\n    actions:\n      default: redact\ndetect:\n"
    (tmp_path / "ok.yaml").write_text(base + "  phone_regions: [UK, FR]\n")
    assert load_dlp_policy(tmp_path / "ok.yaml").phone_regions == ("UK", "FR")
    for body, where in [
        ("  phone_regions: [GB, XX]\n", ":7: detect.phone_regions[1]"),
        ("  phone_regions: []\n", ":7: detect.phone_regions"),
        ("  phone_regions: GB\n", ":7: detect.phone_regions"),
    ]:
        (tmp_path / "bad.yaml").write_text(base + body)
        with pytest.raises(PolicyError, match=re.escape(where)):
            load_dlp_policy(tmp_path / "bad.yaml")


def test_the_scanner_uses_the_policys_regions(tmp_path: Path) -> None:
    base = "version: 1\npolicies:\n  p:\n    actions:\n      default: redact\ndetect:\n"
    (tmp_path / "us.yaml").write_text(base + "  phone_regions: [US]\n")
    (tmp_path / "gb.yaml").write_text(base + "  phone_regions: [GB]\n")
    text = "see 07700 900123 tomorrow"  # no phone word: the region decides
    assert phones(DlpScanner(load_dlp_policy(tmp_path / "gb.yaml")), text)
    assert not phones(DlpScanner(load_dlp_policy(tmp_path / "us.yaml")), text)
