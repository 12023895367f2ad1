"""Card numbers: 12-19 digits, Luhn, a known issuer prefix; a card word where those are weak."""

from __future__ import annotations

import random

import pytest

from tests.unit.dlp.conftest import luhn_card
from tollhouse.dlp import DlpScanner
from tollhouse.dlp.pii import card_check


def cards(scanner: DlpScanner, text: str) -> list[str]:
    found = scanner.scan_text(text)
    return [text[f.start : f.end] for f in found if f.entity_type == "CREDIT_CARD"]


def grouped(number: str, sizes: tuple[int, ...], sep: str = " ") -> str:
    out, i = [], 0
    for n in sizes:
        out.append(number[i : i + n])
        i += n
    return sep.join(out)


# Issuer prefix and length: each is found with no card word at all (its usual shape).
STANDALONE = [
    ("4539", 16),  # Visa
    ("5213", 16),  # Mastercard
    ("2221", 16),  # Mastercard 2-series, both ends of the range
    ("2720", 16),
    ("34", 15),  # Amex
    ("37", 15),
    ("6011", 16),  # Discover
    ("645", 16),
    ("65", 16),
    ("3528", 16),  # JCB
    ("3589", 16),
    ("300", 14),  # Diners
    ("305", 14),
    ("62", 16),  # UnionPay
]


@pytest.mark.parametrize(("prefix", "length"), STANDALONE)
def test_usual_issuer_shapes_are_found_alone(scanner: DlpScanner, prefix: str, length: int) -> None:
    number = luhn_card(prefix, length, seed=len(prefix) + length)
    assert cards(scanner, f"here it is: {number} thanks") == [number]


# Valid, but lengths an order number can have too: found next to a card word only.
WITH_CONTEXT = [
    ("4", 13),  # Visa 13
    ("4", 19),  # Visa 19
    ("5018", 12),  # Maestro 12
    ("6759", 16),  # Maestro 16
    ("6304", 19),  # Maestro 19
    ("36", 14),  # Diners 36
    ("38", 14),
    ("6011", 19),  # Discover 19
    ("3530", 17),  # JCB 17
    ("62", 19),  # UnionPay 19
    ("2131", 15),  # JCB legacy 15
    ("1800", 15),
]


@pytest.mark.parametrize(("prefix", "length"), WITH_CONTEXT)
def test_other_lengths_need_a_card_word(scanner: DlpScanner, prefix: str, length: int) -> None:
    number = luhn_card(prefix, length, seed=length)
    assert cards(scanner, f"my credit card is {number} thanks") == [number]
    assert cards(scanner, f"Maestro {number}") == [number]
    assert cards(scanner, f"here it is: {number} thanks") == []


@pytest.mark.parametrize(
    ("prefix", "length", "sizes", "sep"),
    [
        ("4539", 16, (4, 4, 4, 4), " "),
        ("2223", 16, (4, 4, 4, 4), "-"),
        ("37", 15, (4, 6, 5), " "),
        ("300", 14, (4, 6, 4), "-"),
        ("4", 19, (4, 4, 4, 4, 3), " "),  # a 19-digit Visa in card groups stands alone
    ],
)
def test_separators(scanner: DlpScanner, prefix: str, length: int, sizes, sep: str) -> None:
    text = grouped(luhn_card(prefix, length, seed=3), sizes, sep)
    assert cards(scanner, f"use {text} please") == [text]


def test_a_cvv_or_expiry_after_the_number_is_not_part_of_it(scanner: DlpScanner) -> None:
    number = grouped(luhn_card("4539", 16, seed=5), (4, 4, 4, 4))
    assert cards(scanner, f"card {number} 123") == [number]
    assert cards(scanner, f"card {number} 12/27") == [number]


def test_luhn_failures_and_unknown_prefixes_are_not_cards(scanner: DlpScanner) -> None:
    good = luhn_card("4539", 16, seed=7)
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert cards(scanner, f"card {bad}") == []
    for prefix in ("1", "7", "8", "9", "0"):  # no issuer starts so
        assert cards(scanner, f"card {luhn_card(prefix, 16, seed=2)}") == []
    assert card_check("4539 1234") is False  # too short


@pytest.mark.parametrize(
    "label", ["Order", "order #", "invoice", "tracking", "ref:", "user id", "account"]
)
def test_numbers_named_as_something_else_are_not_cards(scanner: DlpScanner, label: str) -> None:
    number = luhn_card("4539", 16, seed=9)
    assert cards(scanner, f"{label} {number} shipped") == []
    # ... unless a card word says otherwise
    assert cards(scanner, f"{label} paid by card {number}") == [number]


def test_benign_digit_runs_are_not_cards(scanner: DlpScanner) -> None:
    """Random IDs, timestamps and order numbers of 12-19 digits: about one in ten passes Luhn,
    and some of those start with an issuer's digits. Named as something else, none is a card;
    unnamed, only an issuer's usual shape (16-digit Visa, 15-digit Amex...) would be."""
    rng = random.Random(15)
    labelled, bare = [], []
    for _ in range(2000):
        n = rng.randint(12, 19)
        digits = str(rng.randint(10 ** (n - 1), 10**n - 1))
        label = rng.choice(
            ["order", "user_id=", "id:", "tracking number", "invoice #", "timestamp", "ref"]
        )
        labelled.append(f"{label} {digits} done")
        if n not in (14, 15, 16):
            bare.append(f"row {digits}, {rng.randint(1, 99)}")
    assert [t for t in labelled if cards(scanner, t)] == []
    assert [t for t in bare if cards(scanner, t)] == []
