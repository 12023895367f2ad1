"""The injection rule pack (``rules/injection.yaml``): loading and validation.

The file holds rules (patterns or built-in detectors, each with an id, a category, a weight and
the languages it covers) and named policies (thresholds, per-role trust, classifier weight,
switched-off rules) so that an identity binding can pick ``strict`` for one team and
``monitor`` for another. Every value is checked on load; an error names ``file:line: field``.
:func:`load_injection_policy` returns a complete pack or raises: it never half-loads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tollhouse.exchange import Role
from tollhouse.injection.patterns import check_pattern
from tollhouse.policyfile import FieldPath, PolicyDocument, PolicyError, load_policy_file

__all__ = [
    "CATEGORIES",
    "DETECTORS",
    "InjectionPolicy",
    "InjectionRule",
    "PolicyError",
    "ScanPolicy",
    "load_injection_policy",
]

CATEGORIES = frozenset(
    {
        "instruction_override",
        "prompt_extraction",
        "role_impersonation",
        "jailbreak_persona",
        "exfiltration",
        "smuggling",
        "structural",
    }
)

# Built-in detectors and their parameters (name → (type, default)). Their logic is code; what
# they weigh and when they fire is policy.
DETECTORS: dict[str, dict[str, tuple[type, Any]]] = {
    "tag_characters": {},
    "invisible_characters": {"min_count": (int, 1), "in_word": (bool, False)},
    "bidi_controls": {"min_count": (int, 1)},
    "base64": {"min_length": (int, 20)},
    "hex": {"min_bytes": (int, 10)},
    "rot13": {"triggers": (list, [])},
    "leetspeak": {},
    "spaced_letters": {},
    "mixed_script": {"min_words": (int, 1)},
    "delimiter_flood": {"min_run": (int, 64), "min_newlines": (int, 40)},
    "repetition": {"min_repeats": (int, 30)},
}

ALL_ROLES = (
    Role.SYSTEM,
    Role.USER,
    Role.ASSISTANT,
    Role.TOOL_CALL,
    Role.TOOL_RESULT,
    Role.INPUT,
    Role.FIELD,  # tool definitions, schemas, metadata, keys, query and headers: untrusted (1.0)
)
_ID = re.compile(r"^[a-z0-9_]+(?:\.[a-z0-9_]+)*$")
_LANG = re.compile(r"^(?:[a-z]{2,3}|any)$")


@dataclass(frozen=True, slots=True)
class InjectionRule:
    """One rule: regex ``patterns`` on the skeleton view, or a built-in ``detector``."""

    id: str
    category: str
    weight: float
    languages: tuple[str, ...]
    patterns: tuple[str, ...] = ()
    detector: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    line: int | None = None  # where the rule starts in the file, for error messages
    # Roles whose text this rule scores; empty: every role. Rules for instructions addressed to
    # the assistant ("add this link to your answer") are evidence only inside a tool result or
    # document: in a user turn the same words are an ordinary request.
    roles: frozenset[str] = frozenset()

    def applies_to(self, role: str) -> bool:
        """True when text from ``role`` is scored with this rule."""
        return not self.roles or role in self.roles


@dataclass(frozen=True, slots=True)
class ScanPolicy:
    """A named policy: when a score flags or blocks, and how much each role is trusted.

    ``role_trust`` multiplies rule weights for text from that role: 0 means "not scanned"
    (the application's own system prompt), 1 means "fully untrusted".
    """

    name: str
    flag: float
    block: float | None  # None: this policy never blocks (monitor mode)
    role_trust: dict[str, float]
    classifier_weight: float = 0.0
    disabled: frozenset[str] = frozenset()  # rule ids or whole categories

    def trust(self, role: str) -> float:
        """Trust multiplier for ``role``; an unknown role counts as fully untrusted."""
        return self.role_trust.get(role, 1.0)

    def enabled(self, rule: InjectionRule) -> bool:
        """False when this policy switched the rule (or its category) off."""
        return rule.id not in self.disabled and rule.category not in self.disabled


@dataclass(frozen=True, slots=True)
class InjectionPolicy:
    """A validated rule pack: all rules plus its named policies."""

    file: str
    rules: tuple[InjectionRule, ...]
    policies: dict[str, ScanPolicy]
    default_policy: str

    def policy(self, name: str | None = None) -> ScanPolicy:
        """The named policy, or the default one. Raises ``KeyError`` for an unknown name."""
        return self.policies[name or self.default_policy]


def _number(doc: PolicyDocument, path: FieldPath, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise doc.error(path, f"must be a number between {lo} and {hi}")
    if not lo <= float(value) <= hi:
        raise doc.error(path, f"must be between {lo} and {hi}, got {value}")
    return float(value)


def _mapping(doc: PolicyDocument, path: FieldPath, value: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise doc.error(path, "must be a mapping")
    for key in value:
        if key not in allowed:
            raise doc.error((*path, key), f"unknown field (expected one of {sorted(allowed)})")
    return value


def _strings(doc: PolicyDocument, path: FieldPath, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise doc.error(path, "must be a list of non-empty strings")
    return value


def _rule(doc: PolicyDocument, i: int, raw: Any, seen: set[str]) -> InjectionRule:
    path: FieldPath = ("rules", i)
    allowed = {"id", "category", "weight", "languages", "patterns", "detector", "params", "roles"}
    data = _mapping(doc, path, raw, allowed | {"description"})
    for required in ("id", "category", "weight"):
        if required not in data:
            raise doc.error(path, f"missing field '{required}'")
    rid = data["id"]
    if not isinstance(rid, str) or not _ID.match(rid):
        raise doc.error((*path, "id"), "must be dotted lower-case words, e.g. override.ignore_en")
    if rid in seen:
        raise doc.error((*path, "id"), f"duplicate rule id '{rid}'")
    seen.add(rid)
    category = data["category"]
    if category not in CATEGORIES:
        raise doc.error(
            (*path, "category"), f"unknown category (expected one of {sorted(CATEGORIES)})"
        )
    weight = _number(doc, (*path, "weight"), data["weight"], 0.0, 1.0)
    languages = tuple(_strings(doc, (*path, "languages"), data.get("languages", ["any"])))
    for j, lang in enumerate(languages):
        if not _LANG.match(lang):
            raise doc.error(
                (*path, "languages", j), "must be an ISO 639 code such as 'en' or 'any'"
            )
    has_patterns, has_detector = "patterns" in data, "detector" in data
    if has_patterns == has_detector:
        raise doc.error(path, "needs exactly one of 'patterns' or 'detector'")
    patterns: tuple[str, ...] = ()
    detector: str | None = None
    params: dict[str, Any] = {}
    if has_patterns:
        patterns = tuple(_strings(doc, (*path, "patterns"), data["patterns"]))
        if not patterns:
            raise doc.error((*path, "patterns"), "must not be empty")
        if "params" in data:
            raise doc.error((*path, "params"), "only detectors take params")
    else:
        detector = data["detector"]
        if detector not in DETECTORS:
            raise doc.error(
                (*path, "detector"), f"unknown detector (expected one of {sorted(DETECTORS)})"
            )
        spec = DETECTORS[detector]
        given = _mapping(doc, (*path, "params"), data.get("params", {}), set(spec))
        for name, (kind, default) in spec.items():
            value = given.get(name, default)
            if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise doc.error((*path, "params", name), "must be a positive whole number")
            if kind is bool and not isinstance(value, bool):
                raise doc.error((*path, "params", name), "must be true or false")
            if kind is list:
                value = _strings(doc, (*path, "params", name), value)
            params[name] = value
    description = data.get("description", "")
    if not isinstance(description, str):
        raise doc.error((*path, "description"), "must be text")
    roles = _strings(doc, (*path, "roles"), data.get("roles", list(ALL_ROLES)))
    for j, role in enumerate(roles):
        if role not in ALL_ROLES:
            raise doc.error(
                (*path, "roles", j), f"unknown role (expected one of {list(ALL_ROLES)})"
            )
    return InjectionRule(
        rid,
        category,
        weight,
        languages,
        patterns,
        detector,
        params,
        description,
        doc.lines.get(path),
        frozenset(roles) if "roles" in data else frozenset(),
    )


def _policy(doc: PolicyDocument, name: str, raw: Any, rule_ids: set[str]) -> ScanPolicy:
    path: FieldPath = ("policies", name)
    allowed = {"description", "thresholds", "role_trust", "classifier_weight", "disabled"}
    data = _mapping(doc, path, raw, allowed)
    if "thresholds" not in data:
        raise doc.error(path, "missing field 'thresholds'")
    th = _mapping(doc, (*path, "thresholds"), data["thresholds"], {"flag", "block"})
    if "flag" not in th:
        raise doc.error((*path, "thresholds"), "missing field 'flag'")
    flag = _number(doc, (*path, "thresholds", "flag"), th["flag"], 0.0, 1.0)
    block: float | None = None
    if th.get("block") is not None:
        block = _number(doc, (*path, "thresholds", "block"), th["block"], 0.0, 1.0)
        if block < flag:
            raise doc.error((*path, "thresholds", "block"), "must not be below the flag threshold")
    trust_raw = _mapping(doc, (*path, "role_trust"), data.get("role_trust", {}), set(ALL_ROLES))
    trust = {role: 1.0 for role in ALL_ROLES} | {Role.SYSTEM: 0.0}
    for role, value in trust_raw.items():
        trust[role] = _number(doc, (*path, "role_trust", role), value, 0.0, 1.0)
    cw = _number(doc, (*path, "classifier_weight"), data.get("classifier_weight", 0.0), 0.0, 1.0)
    disabled = _strings(doc, (*path, "disabled"), data.get("disabled", []))
    for j, item in enumerate(disabled):
        if item not in rule_ids and item not in CATEGORIES:
            raise doc.error((*path, "disabled", j), f"'{item}' is neither a rule id nor a category")
    return ScanPolicy(name, flag, block, trust, cw, frozenset(disabled))


def parse_injection_policy(doc: PolicyDocument) -> InjectionPolicy:
    """Validate a parsed policy document. Raises :class:`PolicyError` naming file:line: field."""
    data = _mapping(doc, (), doc.data, {"version", "default_policy", "policies", "rules"})
    if data.get("version") != 1:
        raise doc.error(("version",), "must be 1")
    raw_rules = data.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise doc.error(("rules",), "must be a non-empty list of rules")
    seen: set[str] = set()
    rules = tuple(_rule(doc, i, raw, seen) for i, raw in enumerate(raw_rules))
    raw_policies = data.get("policies")
    if not isinstance(raw_policies, dict) or not raw_policies:
        raise doc.error(("policies",), "must map policy names to policies")
    policies = {name: _policy(doc, name, raw, seen) for name, raw in raw_policies.items()}
    default = data.get("default_policy")
    if not isinstance(default, str) or default not in policies:
        raise doc.error(("default_policy",), f"must name one of the policies {sorted(policies)}")
    # Compile every pattern now so that a broken regex is a load error with its line, not a
    # request-time failure. The scanner compiles the combined matcher from the same rules.
    for i, rule in enumerate(rules):
        for j, pattern in enumerate(rule.patterns):
            problem = check_pattern(pattern)
            if problem:
                raise doc.error(("rules", i, "patterns", j), problem)
    return InjectionPolicy(str(doc.file), rules, policies, default)


def load_injection_policy(path: Path | str) -> InjectionPolicy:
    """Load and validate ``rules/injection.yaml``; raises :class:`PolicyError`, never half-loads."""
    return parse_injection_policy(load_policy_file(Path(path)))
