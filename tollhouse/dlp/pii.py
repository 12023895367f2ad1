"""Card numbers, phone numbers and IBANs: the structured PII rules with checks beyond a regex.

- Cards: 12-19 digits (bare, or grouped with spaces or dashes) that pass Luhn *and* start with
  a known issuer prefix at a length that issuer uses. A number in its issuer's usual shape (16
  digits for Visa/Mastercard/Discover/JCB/UnionPay, 15 for Amex, 14 for Diners 300-305, or any
  valid one written in card groups such as 4-4-4-4) counts on its own; any other (a bare 12-15
  or 17-19 digit number, Maestro, a legacy JCB) counts only next to a card word. One random
  number in ten passes Luhn, so length alone would flag order numbers and IDs.
- Phones: candidates in the shapes people write, checked with ``phonenumbers`` (the library
  behind presidio's phone recognizer) against the policy's regions. Written with "+" (or "00")
  and valid, or written the way that region formats its numbers nationally ("07700 900123",
  "01 84 17 61 18", "(02) 9876 5432"), it counts on its own; merely possible somewhere, it needs a
  phone word nearby. With ~35 regions, some region accepts most 8-10 digit numbers (Austria's
  plan is open-ended), so validity alone is no evidence; the national grouping is.
- IBAN: any letter case, the country's length and the ISO 7064 mod-97 check.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from tollhouse.dlp.recognizers import NUMBER_TRIGGER, Rule
from tollhouse.dlp.validators import Validator, iban, luhn

__all__ = [
    "DEFAULT_PHONE_REGIONS",
    "EU_REGIONS",
    "card_check",
    "card_rule",
    "expand_regions",
    "iban_rule",
    "phone_check",
    "phone_rules",
    "phone_tier",
]

EU_REGIONS: tuple[str, ...] = (
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
    "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
)  # fmt: skip
# What rules/dlp.yaml names by default: "EU" expands to the 27 members above.
DEFAULT_PHONE_REGIONS: tuple[str, ...] = ("EU", "GB", "US", "CA", "AU", "IN", "BR", "JP")
_REGION_ALIASES = {"UK": ("GB",), "EU": EU_REGIONS}


def expand_regions(names: Sequence[str]) -> tuple[str, ...]:
    """ISO region codes for ``names`` ("EU" -> its members, "UK" -> "GB"), deduplicated."""
    out: list[str] = []
    for name in names:
        out.extend(_REGION_ALIASES.get(name.upper(), (name.upper(),)))
    return tuple(dict.fromkeys(out))


# --- cards -------------------------------------------------------------------------------

# (first digits low, high, lengths the issuer uses, its usual length or 0 when none is strong)
_IIN: tuple[tuple[int, int, range | tuple[int, ...], int], ...] = (
    (4, 4, (13, 16, 19), 16),  # Visa
    (51, 55, (16,), 16),  # Mastercard
    (2221, 2720, (16,), 16),  # Mastercard 2-series
    (34, 34, (15,), 15),  # American Express
    (37, 37, (15,), 15),
    (6011, 6011, range(16, 20), 16),  # Discover
    (644, 649, range(16, 20), 16),
    (65, 65, range(16, 20), 16),
    (3528, 3589, range(16, 20), 16),  # JCB
    (1800, 1800, (15,), 0),  # JCB, legacy 15-digit ranges
    (2131, 2131, (15,), 0),
    (300, 305, range(14, 20), 14),  # Diners Club
    (36, 36, range(14, 20), 0),
    (38, 39, range(14, 20), 0),
    (62, 62, range(16, 20), 16),  # UnionPay
    (50, 50, range(12, 20), 0),  # Maestro
    (56, 69, range(12, 20), 0),
)
# How cards are printed: 4-4-4-4 (and 4-4-4-4-3), Amex 4-6-5, Diners 4-6-4.
_CARD_GROUPS = frozenset({(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4)})
_DIGIT_GROUPS = re.compile(r"\d+")


def _issuer_strength(digits: str) -> int:
    """2: an issuer's usual length; 1: a length some issuer with this prefix uses; 0: none."""
    best = 0
    for low, high, lengths, usual in _IIN:
        width = len(str(low))
        if low <= int(digits[:width]) <= high and len(digits) in lengths:
            best = max(best, 2 if len(digits) == usual else 1)
    return best


def card_check(text: str) -> bool | None:
    """Validator: True for a card on its own, None for one that needs a card word, else False."""
    groups = tuple(len(g) for g in _DIGIT_GROUPS.findall(text))
    digits = "".join(_DIGIT_GROUPS.findall(text))
    if not 12 <= len(digits) <= 19 or not luhn(digits):
        return False
    strength = _issuer_strength(digits)
    if strength == 0:
        return False
    return True if strength == 2 or groups in _CARD_GROUPS else None


# Printed groups first, so that "4111 1111 1111 1111 123" (a CVV after it) also yields the
# 16-digit card; the resolver keeps the longest span that validates.
_SEP = r"[ -]"
_CARD_PATTERNS = (
    rf"\d{{4}}{_SEP}\d{{6}}{_SEP}\d{{4,5}}",
    rf"\d{{4}}{_SEP}\d{{4}}{_SEP}\d{{4}}{_SEP}\d{{4}}{_SEP}\d{{3}}",
    rf"\d{{4}}{_SEP}\d{{4}}{_SEP}\d{{4}}(?:{_SEP}\d{{1,4}})?",  # 12-16 digits in fours
    r"\d{12,19}",
)
_CARD_CONTEXT = (
    "card", "cards", "credit", "debit", "visa", "mastercard", "amex", "discover", "jcb",
    "diners", "maestro", "unionpay", "cc", "pan", "payment", "pay", "paid", "charge",
    "charged", "billing", "cvv", "cvc", "expiry", "expires", "exp", "cardholder", "instapayment",
)  # fmt: skip
# A card-shaped number these words name as something else (only when no card word is near).
_CARD_NOT_CONTEXT = (
    "order", "orders", "invoice", "tracking", "ref", "reference", "sku", "serial", "ticket",
    "transaction", "txn", "confirmation", "booking", "receipt", "po", "isbn", "imei", "id",
    "ids", "uuid", "account", "customer", "user", "shipment", "parcel", "build", "timestamp",
    "ts", "epoch",
)  # fmt: skip


def card_rule() -> Rule:
    """Card numbers: Luhn, the issuer's prefix and length, a card word where those are weak."""
    return Rule(
        name="CreditCardRecognizer",
        entity="CREDIT_CARD",
        # 0.3: a number that needs a card word stays below any sensible min_score without one.
        patterns=tuple((re.compile(rf"(?<![\w-]){p}(?![\w]|-\d)"), 0.3) for p in _CARD_PATTERNS),
        triggers=(NUMBER_TRIGGER,),
        left=4,
        right=4,
        context=_CARD_CONTEXT,
        not_context=_CARD_NOT_CONTEXT,
        validate=card_check,
        min_digits=12,
    )


# --- phones ------------------------------------------------------------------------------

# International prefix, an area code in brackets, groups split by spaces, dots or dashes, an
# extension; a match needs separators or a "+". Bounded repeats only (linear time).
PHONE_PATTERN = (
    # The lookahead first lets re skip to the next digit, bracket or "+" quickly.
    r"(?=[\d(+])(?<![\w+.-])(?:(?:\+|00)\d{1,3}[ .-]?)?"
    r"(?:\(\d{1,5}\)[ .-]?\d{2,8}(?:[ .-]\d{2,8}){0,4}"  # an area code in brackets
    r"|\d{1,6}(?:[ .-]\d{2,8}){2,5}"  # three groups or more
    # Two groups: seven digits or more, split by a space or a dash ("1234.5678" is a decimal).
    r"|\d{3,6}[ -]\d{4,8}|\d{1,2}[ -]\d{5,8})"
    r"(?:\s?(?:x|ext\.?)\s?\d{1,6})?(?![\w-]|\.\d)"
    r"|(?<![\w+])\+\d{7,15}(?!\w)"
)
PHONE_CONTEXT = (
    "phone", "phones", "call", "called", "calling", "tel", "telephone", "mobile", "cell",
    "cellphone", "fax", "reach", "whatsapp", "sms", "text", "dial", "ring", "landline",
    "contact", "office", "desk", "home", "work", "mob", "ph", "hotline", "telefon", "telefono",
    "telefone", "handy", "portable", "celular", "movil", "tél", "numero",
)  # fmt: skip
# The ASCII phone words, longest first, for patterns ("tél" and "móvil" count as context only).
_WORDS = "|".join(sorted((w for w in PHONE_CONTEXT if w.isascii()), key=len, reverse=True))
PHONE_NOT_CONTEXT = (
    "order", "invoice", "ticket", "tracking", "ref", "reference", "sku", "isbn", "serial",
    "build", "version", "case", "po", "receipt", "transaction", "confirmation", "booking",
    "id", "account", "iban", "card", "zip", "postcode", "version", "page", "pages",
)  # fmt: skip
# A date, alone or before a time ("2024-05-01 10 30"); "01.84.17.61.18" is no date (84).
_DATE = re.compile(
    r"(?:\d{4}[-./][01]?\d[-./][0-3]?\d|[0-3]?\d[-./][0-3]?\d[-./](?:\d{4}|\d{2}))(?:$|\s)"
)
_SSN_SHAPE = re.compile(r"\d{3}([- .])\d{2}\1\d{4}")
_YEAR_RANGE = re.compile(r"(?:1[89]|2[01])\d\d ?[-/] ?(?:1[89]|2[01])\d\d")
_DECIMAL = re.compile(r"\d+\.\d+")  # "50.895486": dotted phones have three groups or more
_DOTTED_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_EXTENSION = re.compile(r"\s?(?:x|ext\.?)\s?\d{1,6}$")


def phone_shape_invalid(text: str) -> bool:
    """True for numbers shaped like a phone that are something else: dates, SSNs, IPs, years."""
    value = _EXTENSION.sub("", text.strip())
    digits = sum(map(str.isdigit, value))
    if not 7 <= digits <= 15:
        return True
    return bool(
        _DECIMAL.fullmatch(value)
        or _DATE.match(value)
        or _SSN_SHAPE.fullmatch(value)
        or _YEAR_RANGE.fullmatch(value)
        or _DOTTED_QUAD.fullmatch(value)
    )


_FORMAT_GROUP = re.compile(r"\\d(?:\{(\d+)(?:,(\d+))?\})?|\\d|\[[^\]]*\](?:\{(\d+)(?:,(\d+))?\})?")
_TEMPLATE_TOKEN = re.compile(r"\\(\d)|(\d)|([^\d\\])")


def _format_shapes(pattern: str, template: str) -> list[tuple[int, ...]]:
    """The digit-group lengths a national format prints, e.g. "(\\d{3})(\\d{4})" with
    "0\\1 \\2" -> [(4, 4)]; ranges are expanded ("\\d{3,4}" -> 3 and 4)."""
    ranges = []
    for group in re.findall(r"\(([^()]*)\)", pattern):
        low = high = 0
        for m in _FORMAT_GROUP.finditer(group):
            a, b = m.group(1) or m.group(3), m.group(2) or m.group(4)
            n = int(a) if a else 1
            low, high = low + n, high + (int(b) if b else n)
        ranges.append((low, high))
    out: list[list[tuple[int, int]]] = [[]]
    current: tuple[int, int] | None = None
    for ref, _digit, other in _TEMPLATE_TOKEN.findall(template):
        if other:
            if current is not None:
                out[0].append(current)
                current = None
            continue
        add = ranges[int(ref) - 1] if ref and int(ref) <= len(ranges) else (1, 1)
        current = add if current is None else (current[0] + add[0], current[1] + add[1])
    if current is not None:
        out[0].append(current)
    shapes: list[tuple[int, ...]] = [()]
    for low, high in out[0]:
        shapes = [(*s, n) for s in shapes for n in range(low, min(high, 15) + 1)]
    return shapes


@lru_cache(maxsize=64)
def _national_shapes(regions: tuple[str, ...]) -> dict[tuple[int, ...], tuple[str, ...]]:
    """For each digit grouping, the regions that print some national number that way."""
    import phonenumbers

    index: dict[tuple[int, ...], list[str]] = {}
    for region in regions:
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if meta is None:
            continue
        for fmt in meta.number_format:
            template = fmt.format or ""
            if fmt.national_prefix_formatting_rule:
                template = template.replace("\\1", fmt.national_prefix_formatting_rule, 1)
            for shape in _format_shapes(fmt.pattern or "", template):
                if len(shape) > 1 and region not in index.setdefault(shape, []):
                    index[shape].append(region)
    return {k: tuple(v) for k, v in index.items()}


@lru_cache(maxsize=8192)
def phone_tier(written: str, regions: tuple[str, ...]) -> int:
    """2: written with "+"/"00" and valid, or grouped the way a region in ``regions`` prints
    its numbers (and possible there; valid too if under 10 digits); 0 otherwise. Only the
    regions printing that grouping are asked (one dict look-up rules out most numbers)."""
    import phonenumbers

    if written.startswith(("+", "00")):
        number = "+" + written[2:] if written.startswith("00") else written
        try:
            parsed = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            return 0
        return 3 if phonenumbers.is_valid_number(parsed) else 0
    groups = tuple(len(g) for g in _DIGIT_GROUPS.findall(written))
    national = phonenumbers.PhoneNumberFormat.NATIONAL
    for region in _national_shapes(regions).get(groups, ()):
        try:
            parsed = phonenumbers.parse(written, region)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_possible_number(parsed):
            continue
        formatted = phonenumbers.format_number(parsed, national)
        if tuple(len(g) for g in _DIGIT_GROUPS.findall(formatted)) != groups:
            continue
        # Over ten digits with neither the trunk prefix nor an area code in brackets ("359 8750
        # 76686": some Italian mobile) is more often three numbers in a row than a phone.
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        prefix = meta.national_prefix if meta is not None else None
        trunk = bool(prefix) and written.lstrip("(").startswith(prefix or "-")
        if not trunk and sum(groups) > 10 and not written.startswith("("):
            continue
        if phonenumbers.is_valid_number(parsed):
            return 2
        # Not assigned, but written with the trunk prefix in a national grouping and long
        # enough ("07700 900123", a number kept free for drama): a phone number all the same.
        if trunk and sum(groups) >= 10:
            return 2
    return 0


def phone_check(regions: Sequence[str], tiers: dict[int, bool | None]) -> Validator:
    """Validator for phones in ``regions`` (ISO codes): the verdict ``tiers`` gives each tier."""
    key = tuple(regions)

    def check(text: str) -> bool | None:
        if phone_shape_invalid(text):
            return False
        return tiers.get(phone_tier(_EXTENSION.sub("", text.strip()), key), False)

    return check


def phone_rules(regions: Sequence[str] = DEFAULT_PHONE_REGIONS) -> list[Rule]:
    """Phone numbers of ``regions`` (names as in the policy: "EU", "GB", ...): a rule for those
    that stand alone (0.5, or 1.0 written with "+" and valid) and one for those that count
    only next to a phone word (possible numbers written some other way)."""
    codes = expand_regions(regions)
    common = {
        "entity": "PHONE_NUMBER",
        "triggers": (NUMBER_TRIGGER,),
        "context": PHONE_CONTEXT,
        "invalidate": phone_shape_invalid,
        "min_digits": 7,
        "label": "PHONE",
    }
    return [
        Rule(
            name="PhoneRecognizer",
            patterns=((re.compile(PHONE_PATTERN), 0.5),),
            left=8,
            right=12,
            not_context=PHONE_NOT_CONTEXT,
            validate=phone_check(codes, {3: True, 2: None}),
            **common,  # type: ignore[arg-type]
        ),
        Rule(
            name="PhoneContextRecognizer",
            # The phone word is part of the pattern, so that the one-pass prefilter reports
            # only numbers next to one (not every number a second time); the value is group 1.
            patterns=(
                (re.compile(rf"(?i:\b(?:{_WORDS})\b)[^\d\n]{{0,30}}?({PHONE_PATTERN})"), 0.4),
                (re.compile(rf"({PHONE_PATTERN})[ \t]{{0,3}}\(?(?i:(?:{_WORDS})\b)"), 0.4),
            ),
            value_group=1,
            left=48,
            right=40,
            needs_context=True,
            validate=None,  # the shape checks (invalidate) and the phone word decide
            **common,  # type: ignore[arg-type]
        ),
    ]


# --- IBAN --------------------------------------------------------------------------------

# Country code, check digits, then groups of four (after the bank code, each holds a digit,
# so "... 0130 00 FROM" does not take "FROM"), then a short last group of digits. Upper and
# lower case are separate patterns, not one case-blind one: the one-pass prefilter then runs
# ~10x faster (lower-case hex digests look like compact lower-case IBANs), and a lower-case
# IBAN written compact must have digits after its bank code (most countries' format).
_IBAN_GROUP = r"(?:\d[A-Z0-9]{3}|[A-Z]\d[A-Z0-9]{2}|[A-Z]{2}\d[A-Z0-9]|[A-Z]{3}\d)"
_IBAN_PATTERNS = (
    r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}[ -]?[A-Z0-9]{4}(?:[ -]?" + _IBAN_GROUP + r"){1,7}"
    r"(?:[ -]?\d{1,3})?(?![A-Za-z0-9])",
    r"(?<![A-Za-z0-9])[a-z]{2}\d{2}[ -][a-z0-9]{4}(?:[ -]"
    + _IBAN_GROUP.replace("A-Z", "a-z")
    + r"){1,7}(?:[ -]\d{1,3})?(?![A-Za-z0-9])",
    r"(?<![A-Za-z0-9])[a-z]{2}\d{2}[a-z0-9]{4}\d{7,26}(?![A-Za-z0-9])",
)


def iban_rule() -> Rule:
    """IBANs in any letter case, with the country's length and the mod-97 check."""
    return Rule(
        name="IbanRecognizer",
        entity="IBAN_CODE",
        patterns=tuple((re.compile(p), 0.5) for p in _IBAN_PATTERNS),
        triggers=(NUMBER_TRIGGER,),
        left=34,
        right=40,
        context=("iban", "bank", "transaction", "account", "transfer", "wire"),
        validate=iban,
        min_digits=4,
    )
