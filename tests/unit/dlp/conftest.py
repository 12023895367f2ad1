"""Shared fixtures: the project's DLP policy compiled once, and generators of real formats."""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest

from tollhouse.dlp import DlpScanner, load_dlp_policy

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def scanner() -> DlpScanner:
    return DlpScanner(load_dlp_policy(ROOT / "rules" / "dlp.yaml"))


def rand(alphabet: str, n: int, seed: int = 0) -> str:
    rng = random.Random(f"{alphabet}{n}{seed}")
    return "".join(rng.choice(alphabet) for _ in range(n))


ALNUM = string.ascii_letters + string.digits


def luhn_card(prefix: str, length: int = 16, seed: int = 1) -> str:
    """A card number with a valid Luhn check digit."""
    body = prefix + rand(string.digits, length - len(prefix) - 1, seed)
    for check in string.digits:
        candidate = body + check
        total = 0
        for i, d in enumerate(reversed([int(c) for c in candidate])):
            if i % 2:
                d = d * 2 - 9 if d * 2 > 9 else d * 2
            total += d
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable")


def iban(country: str, bban: str) -> str:
    """An IBAN with correct mod-97 check digits."""
    rearranged = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in rearranged))
    return f"{country}{98 - number % 97:02d}{bban}"
