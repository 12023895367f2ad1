"""IBANs: any letter case, grouped or not, the country's length and the mod-97 check."""

from __future__ import annotations

import pytest

from tests.unit.dlp.conftest import iban
from tollhouse.dlp import DlpScanner
from tollhouse.dlp.validators import iban as iban_check


def ibans(scanner: DlpScanner, text: str) -> list[str]:
    return [text[f.start : f.end] for f in scanner.scan_text(text) if f.entity_type == "IBAN_CODE"]


def spaced(value: str) -> str:
    return " ".join(value[i : i + 4] for i in range(0, len(value), 4))


ACCOUNTS = [
    iban("DE", "370400440532013000"),
    iban("GB", "WEST12345698765432"),
    iban("FR", "20041010050500013M02606"),
    iban("NL", "ABNA0417164300"),
    iban("ES", "21000418450200051332"),
    iban("IT", "X0542811101000000123456"),
    iban("BE", "539007547034"),
    iban("NO", "86011117947"),
]


@pytest.mark.parametrize("account", ACCOUNTS)
def test_any_case_and_grouping(scanner: DlpScanner, account: str) -> None:
    forms = [account, spaced(account), spaced(account).lower()]
    if account[8:].isdigit():  # compact lower case: digits after the bank code (not FR's 3M02)
        forms.append(account.lower())
    for form in forms:
        assert ibans(scanner, f"pay to {form} today") == [form], form
    assert ibans(scanner, f"pay to {spaced(account)} from my card") == [spaced(account)]


def test_checks(scanner: DlpScanner) -> None:
    good = iban("DE", "370400440532013000")
    bad = good[:2] + f"{(int(good[2:4]) + 1) % 100:02d}" + good[4:]
    assert iban_check(good) and iban_check(good.lower())
    assert not iban_check(bad)
    assert not iban_check(good + "0")  # wrong length for Germany
    assert not iban_check(iban("ZZ", "370400440532013000"))  # no such country
    assert ibans(scanner, f"pay to {bad}") == []
    assert ibans(scanner, "sha de8911f2a0c44f8b7a3e9d0c1b2a3f4e5d6c7b8a") == []
