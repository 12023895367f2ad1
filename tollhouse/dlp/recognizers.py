"""Rules: the recognizers the engine runs, built from presidio, our secret table and policy.

A :class:`Rule` keeps what a presidio ``PatternRecognizer`` is made of (patterns with scores,
context words, ``validate_result`` / ``invalidate_result``) plus the one thing the fast engine
needs in addition: a cheap *trigger* regex that must occur in or next to every match, and how far
around a trigger the exact patterns can reach.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from tollhouse.dlp.secrets import SECRETS
from tollhouse.dlp.validators import VALIDATORS, Validator

__all__ = [
    "DEFAULT_NATIONAL_IDS",
    "Rule",
    "builtin_rules",
    "custom_rule",
    "phone_rule",
    "presidio_rule",
    "secret_rules",
]

# Where a trigger fires, the exact patterns run on a window around it. A trigger is
# "lit:TEXT" (a case-sensitive literal, found with str.find), "kw:text" (a lowercase literal
# found in the lowercased text) or "re:REGEX". Rules sharing a trigger share its windows.
NUMBER_TRIGGER = r"re:\d[\d \-./()]*\d"  # a run of digits with separators
TOKEN_TRIGGER = r"re:[A-Za-z0-9+/_-]{24,}={0,2}"  # noqa: S105 - a long token: keys, addresses, base64
EMAIL_TRIGGER = "lit:@"


@dataclass(frozen=True, slots=True)
class Rule:
    """One recognizer: patterns confirmed around a trigger, then validated and scored."""

    name: str  # the detector name shown in findings, e.g. "CreditCardRecognizer"
    entity: str
    patterns: tuple[tuple[Any, float], ...]  # compiled re/regex pattern, base score
    triggers: tuple[str, ...]
    left: int = 40
    right: int = 60
    context: tuple[str, ...] = ()
    validate: Validator | None = None
    invalidate: Validator | None = None
    group: str = "pii"  # "pii", "secret" or "custom": policy actions can address a group
    value_group: int = 0
    min_digits: int = 0  # for number triggers: skip windows whose digit runs are shorter
    label: str | None = None  # placeholder label; defaults to the entity type
    token: bool = False  # matches never contain whitespace: windows stay inside one token
    anchored: bool = False  # a match starts where the trigger starts: match there, no window
    prefilter: Any = None  # compiled regex: skip a window where it finds nothing
    max_digits: int = 1 << 30  # for number triggers: skip hits with more digits than this
    glued: bool = False  # for number triggers: the hit must touch a letter (mixed IDs)
    needs_context: bool = False  # no context word nearby, no finding (bare digits, one check digit)
    # A word here just before a match, and no context word, means something else (a version).
    not_context: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    # Found by the optional NER model, not by patterns: loses to any overlapping pattern finding.
    ner: bool = False


def _compile(regex: str, flags: int) -> Any:
    """Python's ``re`` is faster; presidio writes for ``regex``, so fall back to it."""
    try:
        return re.compile(regex, flags)
    except re.error:
        import regex as regex_module

        return regex_module.compile(regex, flags)


# Presidio recognizers on by default: the generic PII, plus national IDs that carry a checksum
# (or, for UK NINO, a format precise enough), so that a default policy stays precise.
DEFAULT_NATIONAL_IDS: tuple[str, ...] = (
    "UsSsnRecognizer",
    "NhsRecognizer",
    "UkNinoRecognizer",
    "EsNifRecognizer",
    "EsNieRecognizer",
    "ItFiscalCodeRecognizer",
    "PlPeselRecognizer",
    "FiPersonalIdentityCodeRecognizer",
    "AuTfnRecognizer",
    "AuMedicareRecognizer",
    "InAadhaarRecognizer",
    "SePersonnummerRecognizer",
    "TrNationalIdRecognizer",
    "DeTaxIdRecognizer",
    "ZaIdNumberRecognizer",
    "KrRrnRecognizer",
)

# National IDs written as bare digits with one check digit (or a date and one check digit): about
# one random number in ten passes, so order numbers, user ids and timestamps would. They count
# only with one of their context words nearby ("NHS", "PESEL", "TFN", "Steuer-ID", ...).
NEEDS_CONTEXT = frozenset(
    {
        "NhsRecognizer",
        "PlPeselRecognizer",
        "AuTfnRecognizer",
        "AuMedicareRecognizer",
        "InAadhaarRecognizer",
        "SePersonnummerRecognizer",
        "TrNationalIdRecognizer",
        "DeTaxIdRecognizer",
        "ZaIdNumberRecognizer",
        "KrRrnRecognizer",
    }
)
# Words before a dotted quad that make it a version number, not an address ("bumped 1.2.3.4").
_VERSION_WORDS = (
    "version", "versions", "ver", "v", "release", "released", "releases", "bump", "bumped",
    "bumps", "upgrade", "upgraded", "upgrading", "downgrade", "downgraded", "changelog", "build",
    "firmware", "sdk", "package", "tag", "tagged", "patch",
)  # fmt: skip

# Trigger and window per presidio recognizer: (triggers, left, right, min_digits). Most are
# numbers; min_digits is the fewest digits one of their matches holds in a row of digits and
# separators, so that "2024" or "12/27" does not run the 9-digit recognizers.
_NUM = (NUMBER_TRIGGER,)
_PRESIDIO_TRIGGERS: dict[str, tuple[tuple[str, ...], int, int, int]] = {
    "EmailRecognizer": ((EMAIL_TRIGGER,), 80, 260, 0),
    "CryptoRecognizer": ((TOKEN_TRIGGER,), 0, 70, 0),
    "IpRecognizer": ((NUMBER_TRIGGER,), 4, 4, 4),
    "CreditCardRecognizer": (_NUM, 4, 4, 12),
    "IbanRecognizer": (_NUM, 34, 40, 4),
    "UsSsnRecognizer": (_NUM, 2, 2, 9),
    "ItFiscalCodeRecognizer": (_NUM, 10, 8, 2),
    "UkNinoRecognizer": (_NUM, 4, 4, 6),
}


def presidio_rule(class_name: str) -> Rule:
    """Wrap presidio's predefined recognizer ``class_name``: its patterns, context, validators."""
    module = importlib.import_module("presidio_analyzer.predefined_recognizers")
    recognizer = getattr(module, class_name)()
    flags = recognizer.global_regex_flags or 0
    patterns = tuple((_compile(p.regex, flags), p.score) for p in recognizer.patterns)
    triggers, left, right, min_digits = _PRESIDIO_TRIGGERS.get(class_name, (_NUM, 12, 12, 6))
    token = class_name in ("EmailRecognizer", "CryptoRecognizer", "IpRecognizer")
    if class_name == "IpRecognizer":  # IPv4 only here; see ipv6_rule()
        patterns = tuple(
            p for p, src in zip(patterns, recognizer.patterns, strict=True) if src.name == "IPv4"
        )
    return Rule(
        name=class_name,
        entity=recognizer.supported_entities[0],
        patterns=patterns,
        triggers=triggers,
        left=left,
        right=right,
        context=tuple(w.strip().lower() for w in recognizer.context or ()),
        validate=_email_domain
        if class_name == "EmailRecognizer"
        else _overridden(recognizer, "validate_result"),
        invalidate=_overridden(recognizer, "invalidate_result"),
        min_digits=min_digits,
        max_digits=3 if class_name == "ItFiscalCodeRecognizer" else 1 << 30,
        glued=class_name == "ItFiscalCodeRecognizer",
        needs_context=class_name in NEEDS_CONTEXT,
        not_context=_VERSION_WORDS if class_name == "IpRecognizer" else (),
        token=token,
        label={"EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE"}.get(
            recognizer.supported_entities[0]
        ),
    )


@lru_cache(maxsize=1)
def _offline_tld_extractor() -> Any:
    import tldextract

    # No suffix-list download: presidio's default extractor fetches it over the network.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def _email_domain(text: str) -> bool:
    """Presidio's email check (the domain has a public suffix), with the bundled suffix list.

    A colon before the "@" makes it a URL's ``user:password@host``, found as a credential.
    """
    local, _, domain = text.rpartition("@")
    if ":" in local:
        return False
    return _offline_tld_extractor()(domain).fqdn != ""


def _overridden(recognizer: Any, method: str) -> Validator | None:
    """The recognizer's own checksum method, if its class defines one (the base returns None)."""
    from presidio_analyzer import PatternRecognizer

    if getattr(type(recognizer), method) is getattr(PatternRecognizer, method):
        return None
    bound: Callable[[str], bool | None] = getattr(recognizer, method)
    return bound


# Every IPv6 match holds "::" or, written in full, five colons around four hex groups; a clock
# time "10:04:05" holds neither. The regex starts with a literal, so re's fast search finds it.
IPV6_TRIGGERS = (
    "lit:::",
    r"re::[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:",
)


def ipv6_rule() -> Rule:
    """Presidio's IPv6 patterns and validation, run only where a token holds IPv6's colons."""
    base = presidio_rule("IpRecognizer")
    module = importlib.import_module("presidio_analyzer.predefined_recognizers")
    recognizer = module.IpRecognizer()
    flags = recognizer.global_regex_flags or 0
    patterns = tuple(
        (_compile(p.regex, flags), p.score) for p in recognizer.patterns if p.name != "IPv4"
    )
    return Rule(
        name="IpV6Recognizer",
        entity="IP_ADDRESS",
        patterns=patterns,
        triggers=IPV6_TRIGGERS,
        left=64,  # the longest match ("ffff:...:255.255.255.255/128") is 49 characters
        right=64,
        context=base.context,
        invalidate=base.invalidate,
        token=True,
    )


def secret_rules(names: Iterable[str] | None = None) -> list[Rule]:
    """Rules for the credential formats in :mod:`tollhouse.dlp.secrets` (all, or those named)."""
    wanted = set(names) if names is not None else None
    rules = []
    for spec in SECRETS:
        if wanted is not None and spec.entity not in wanted and spec.name not in wanted:
            continue
        rules.append(
            Rule(
                name=spec.name,
                entity=spec.entity,
                patterns=((re.compile(spec.pattern), spec.score),),
                triggers=spec.triggers,
                left=40 if spec.triggers == ("lit:://",) else 0,
                right=spec.right,
                validate=VALIDATORS[spec.validator] if spec.validator else None,
                group="secret",
                value_group=spec.value_group,
                anchored=spec.triggers != ("lit:://",),
            )
        )
    return rules


def builtin_rules(
    national_ids: Sequence[str] = DEFAULT_NATIONAL_IDS,
    phone_regions: Sequence[str] | None = None,
) -> list[Rule]:
    """Generic PII recognizers plus the given presidio national-ID recognizers; phone numbers
    of ``phone_regions`` (policy names such as "EU", "GB"; None: the default regions)."""
    # Imported here: the card, phone and IBAN rules are built from this module's Rule.
    from tollhouse.dlp import pii

    generic = ["EmailRecognizer", "IpRecognizer", "CryptoRecognizer"]
    rules = [presidio_rule(n) for n in generic]
    rules.append(pii.card_rule())
    rules.append(pii.iban_rule())
    rules.append(ipv6_rule())
    regions = pii.DEFAULT_PHONE_REGIONS if phone_regions is None else phone_regions
    rules.extend(pii.phone_rules(regions))
    rules.append(
        Rule(
            name="EthereumRecognizer",
            entity="CRYPTO",
            patterns=((re.compile(r"\b0x[a-fA-F0-9]{40}\b"), 0.6),),
            triggers=("lit:0x",),
            left=0,
            right=44,
            context=("eth", "ethereum", "wallet", "address"),
            validate=VALIDATORS["eth_address"],
        )
    )
    rules.extend(presidio_rule(n) for n in national_ids)
    return rules


def custom_rule(
    name: str,
    patterns: Sequence[tuple[str, float]] = (),
    deny_list: Sequence[str] = (),
    context: Sequence[str] = (),
    validator: str | None = None,
    ignore_case: bool = False,
    label: str | None = None,
) -> Rule:
    """A rule the security team declares in YAML: regexes and/or a deny list of words.

    A pattern that starts with a literal (``EMP-\\d{6}``) is triggered by that literal, found
    with ``str.find``; any other pattern is its own trigger, one regex pass over the text.
    """
    flags = re.IGNORECASE if ignore_case else 0
    compiled = [(re.compile(regex, flags), score) for regex, score in patterns]
    triggers = [_literal_trigger(regex, ignore_case) for regex, _ in patterns]
    if deny_list:
        words = "|".join(re.escape(w) for w in sorted(deny_list, key=len, reverse=True))
        compiled.append((re.compile(r"(?<!\w)(?:" + words + r")(?!\w)", flags), 1.0))
        # Each word is a literal trigger: found with str.find, no regex pass over the text.
        triggers.extend(("kw:" + w.lower()) if ignore_case else ("lit:" + w) for w in deny_list)
    return Rule(
        name=f"custom:{name}",
        entity=name,
        patterns=tuple(compiled),
        triggers=tuple(dict.fromkeys(triggers)),
        left=0,
        right=0,
        anchored=True,
        context=tuple(w.lower() for w in context),
        validate=VALIDATORS[validator] if validator else None,
        group="custom",
        label=label,
    )


_LEADING_LITERAL = re.compile(r"(?:\\b)?((?:[A-Za-z0-9_@#:=]|\\[-.:/@#_=])+)")


def _literal_trigger(regex: str, ignore_case: bool) -> str:
    """A literal prefix of ``regex`` as a trigger when it has one of 3+ chars, else the regex.

    Only a prefix that no quantifier or alternation follows counts: ``EMP-\\d{6}`` gives "EMP-".
    """
    m = _LEADING_LITERAL.match(regex)
    if m and "|" not in regex:
        literal = m.group(1).replace("\\", "")
        rest = regex[m.end() :]
        if rest[:1] in ("*", "?", "{", "+"):
            literal = literal[:-1]  # the last char is quantified
        if len(literal) >= 3:
            return "kw:" + literal.lower() if ignore_case else "lit:" + literal
    return f"re:(?i:{regex})" if ignore_case else "re:" + regex


def phone_rule(regions: Sequence[str] | None = None) -> Rule:
    """The phone rule for ``regions`` (None: the default regions); see :mod:`.pii`."""
    from tollhouse.dlp import pii

    return pii.phone_rules(pii.DEFAULT_PHONE_REGIONS if regions is None else regions)[0]
