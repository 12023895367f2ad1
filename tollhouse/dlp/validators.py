"""Checksums and plausibility checks that turn a pattern match into a finding or drop it.

A validator takes the matched text and returns True (certain: score 1.0), False (drop it) or
None (no opinion: keep the pattern's score). Rule authors name them in ``rules/dlp.yaml``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable

Validator = Callable[[str], bool | None]

_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")
_PLACEHOLDER = re.compile(
    r"(?i)(?:x{4,}|\.{3}|\*{3,}|<[^>]*>|\{[^}]*\}|your[_-]?|example|sample|dummy|fake|placeholder"
    r"|redacted|changeme|test[_-]?key|0{8,}|1234567|abcdef[g-z])"
)
_HEX = re.compile(r"[0-9a-fA-F]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def luhn(text: str) -> bool:
    """Luhn checksum over the digits of ``text`` (cards, IMEI, Canadian SIN)."""
    digits = [int(c) for c in text if c.isdigit()]
    if len(digits) < 2:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


# IBAN length per country (SWIFT's IBAN registry): a mod-97 pass at the wrong length is noise.
_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip
IBAN_COUNTRIES: tuple[str, ...] = tuple(sorted(_IBAN_LENGTHS))


def iban(text: str) -> bool:
    """ISO 13616 check of an IBAN in any letter case, spaces and dashes ignored: a country of
    the IBAN registry, its length and the mod-97 check digits."""
    s = _NON_ALNUM.sub("", text).upper()
    if not 15 <= len(s) <= 34 or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    if _IBAN_LENGTHS.get(s[:2]) != len(s):
        return False
    rearranged = s[4:] + s[:4]
    try:
        return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
    except ValueError:
        return False


def shannon_entropy(text: str) -> float:
    """Bits per character of ``text``: random keys score high, words and repeats low."""
    if not text:
        return 0.0
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def is_placeholder(text: str) -> bool:
    """True for documentation stand-ins: ``sk-...``, ``sk-xxxx``, ``<your-key>``, ``EXAMPLE``."""
    return bool(_PLACEHOLDER.search(text))


def is_hash_like(text: str) -> bool:
    """True for hex digests (md5, sha1, sha256, git SHAs) and UUIDs: identifiers, not secrets."""
    s = text.strip()
    if _UUID.fullmatch(s):
        return True
    return bool(_HEX.fullmatch(s)) and len(s) in (7, 8, 12, 16, 32, 40, 48, 56, 64, 96, 128)


def secret_token(text: str, min_entropy: float = 3.0) -> bool | None:
    """Validator for a structured secret: False for placeholders and low-entropy fillers."""
    if is_placeholder(text):
        return False
    body = text.split("_", 1)[-1] if "_" in text[:12] else text
    if shannon_entropy(body) < min_entropy:
        return False
    return None


# Code that reads a secret from somewhere is not the secret: ``request.headers.get(``,
# ``process.env.STRIPE_KEY``, ``os.environ["X"]``, ``settings.API_TOKEN``, ``MY_SECRET_NAME``.
_CODE_REFERENCE = re.compile(
    r"[A-Za-z_$][\w$]*(?:(?:\.|::|->)[A-Za-z_$][\w$]*)*\(.*"  # a call
    r"|(?:process|os|env|environ|config|cfg|settings|conf|self|this|request|req|props|params"
    r"|secrets|vars|ctx|context|options|opts|args|window|import|app)(?:(?:\.|::|->|\[)[\w$\]\[]+)+"
    r"|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+"  # an environment variable's name
    r"|[a-z][a-z0-9]*(?:_[a-z0-9]+){2,}[)\]]*"  # a snake_case variable: db_password_from_vault
)


def high_entropy_secret(text: str) -> bool | None:
    """Validator for an unstructured secret next to a keyword: random-looking, not a hash."""
    value = text.strip("'\"` ")
    if len(value) < 12 or (value.isalpha() and (value.islower() or value.istitle())):
        return False  # a plain word, e.g. "password: required"
    # Character classes at C speed (this runs at every keyword of a prompt): lower case,
    # upper case, digits, anything else.
    classes = (
        (value != value.upper())
        + (value != value.lower())
        + any(map(str.isdigit, value))
        + (not value.isalnum())
    )
    if classes < 2 or shannon_entropy(value) < 3.2:
        return False
    if is_placeholder(value) or is_hash_like(value) or _CODE_REFERENCE.fullmatch(value):
        return False
    return None


def aws_secret_key(text: str) -> bool | None:
    """AWS secret access keys are 40 random base64 characters: not a hex digest, not a word."""
    if is_hash_like(text) or is_placeholder(text) or "EXAMPLEKEY" in text:
        return False
    return None if shannon_entropy(text) >= 4.0 else False


def eth_address(text: str) -> bool | None:
    """An Ethereum address: 0x + 40 hex digits, not all one digit."""
    body = text[2:]
    return False if len(set(body.lower())) < 6 else None


def jwt(text: str) -> bool | None:
    """A JWT: three base64url parts, the first decoding to a JSON header."""
    import base64
    import binascii

    head = text.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
    except (binascii.Error, ValueError):
        return False
    return bool(decoded.lstrip().startswith(b"{") and b'"alg"' in decoded)


_DOC_PASSWORDS = frozenset(
    {"password", "pass", "passwd", "secret", "pwd", "changeme", "xxx", "xxxx", "****", "***"}
)


def url_password(text: str) -> bool | None:
    """The password of a URL with credentials: drop documentation stand-ins (``user:password@``)."""
    if text.lower() in _DOC_PASSWORDS or is_placeholder(text) or text.startswith("$"):
        return False
    if _CODE_REFERENCE.fullmatch(text):
        return False
    return None


def mod11_digits(text: str) -> bool:
    """Generic weighted mod-11 check (weights 2..n from the right) used by many national IDs."""
    digits = [int(c) for c in text if c.isdigit()]
    if len(digits) < 2:
        return False
    *body, check = digits
    total = sum(d * w for d, w in zip(reversed(body), range(2, len(body) + 2), strict=False))
    return (11 - total % 11) % 11 % 10 == check


VALIDATORS: dict[str, Validator] = {
    "luhn": luhn,
    "iban": iban,
    "mod11": mod11_digits,
    "secret": secret_token,
    "high_entropy": high_entropy_secret,
    "aws_secret_key": aws_secret_key,
    "eth_address": eth_address,
    "jwt": jwt,
    "url_password": url_password,
}
"""Validators a rule author may name in ``rules/dlp.yaml`` (``validator: luhn``)."""
