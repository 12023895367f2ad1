"""The DLP policy the security team writes in ``rules/dlp.yaml``, validated on load.

Every error names the file, the line and the field (``rules/dlp.yaml:14: policies.standard.
actions.EMAIL: unknown action 'redcat'``). :func:`load_dlp_policy` either returns a complete
:class:`DlpPolicy` or raises :class:`PolicyError`; it never returns half a policy, so the caller
can keep the last good one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tollhouse.dlp.ner import NER_ENTITIES, NerError, NerRecognizer, load_ner
from tollhouse.dlp.pii import DEFAULT_PHONE_REGIONS
from tollhouse.dlp.recognizers import DEFAULT_NATIONAL_IDS
from tollhouse.dlp.secrets import SECRETS
from tollhouse.dlp.validators import VALIDATORS
from tollhouse.policyfile import PolicyDocument, PolicyError, load_policy_file

__all__ = [
    "ACTIONS",
    "ATTACHMENT_MODES",
    "BUILTIN_PII",
    "DEFAULT_MAX_SCAN_CHARS",
    "DEFAULT_NER_MAX_SEGMENT_CHARS",
    "ActionSpec",
    "CustomEntity",
    "DlpPolicy",
    "NamedPolicy",
    "PolicyError",
    "load_dlp_policy",
]

ACTIONS = ("redact", "mask", "hash", "block", "allow")
# A request with more text than this is refused (413), not scanned: scanning is linear, but a
# pathological 10 MB prompt (all digits) would hold a worker thread for tens of seconds. Four
# million characters is about a million tokens, past every model's context window but Gemini's.
DEFAULT_MAX_SCAN_CHARS = 4_000_000
ATTACHMENT_MODES = ("pass", "log", "block")
# NER above this many characters in one segment is skipped: a large spaCy model takes tens of
# milliseconds per KB on one core (spaCy's published CPU speed), the pattern pass about 0.1 ms.
DEFAULT_NER_MAX_SEGMENT_CHARS = 20_000
DEFAULT_NER_ENTITIES = ("PERSON", "LOCATION", "ORGANIZATION")
BUILTIN_PII = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "CRYPTO")
GROUPS = ("PII", "SECRET", "CUSTOM")
SECRET_ENTITIES = tuple(dict.fromkeys(s.entity for s in SECRETS))
_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
Path_ = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """What to do with one entity type: ``action`` plus its options."""

    action: str = "redact"
    restore: bool = False  # swap the placeholder back in the response (redact only)
    keep: int = 4  # mask: characters kept at the end


@dataclass(frozen=True, slots=True)
class CustomEntity:
    """An entity type the security team defines: regexes and/or a deny list."""

    name: str
    patterns: tuple[tuple[str, float], ...] = ()
    deny_list: tuple[str, ...] = ()
    context: tuple[str, ...] = ()
    validator: str | None = None
    ignore_case: bool = False
    label: str | None = None


@dataclass(frozen=True, slots=True)
class NamedPolicy:
    """Actions per entity type (or group ``PII``/``SECRET``/``CUSTOM``, or ``default``)."""

    name: str
    actions: dict[str, ActionSpec]
    attachments: str = "log"

    def action_for(self, entity: str, group: str) -> ActionSpec:
        """The action for ``entity``: its own entry, else its group's, else ``default``."""
        return (
            self.actions.get(entity)
            or self.actions.get(group.upper())
            or self.actions.get("default")
            or ActionSpec()
        )


@dataclass(frozen=True)
class DlpPolicy:
    """A loaded ``rules/dlp.yaml``: what to detect and the named action policies."""

    source: str = "<default>"
    min_score: float = 0.5
    pii: tuple[str, ...] = BUILTIN_PII
    national_ids: tuple[str, ...] = DEFAULT_NATIONAL_IDS
    # Where phone numbers written without "+" are read: ISO codes, "EU" for its members.
    phone_regions: tuple[str, ...] = DEFAULT_PHONE_REGIONS
    secrets: tuple[str, ...] | None = None  # None: all known secret formats
    decode_base64: bool = True
    custom_entities: tuple[CustomEntity, ...] = ()
    allow_values: tuple[str, ...] = ()
    allow_patterns: tuple[str, ...] = ()
    hash_key_env: str = "TOLLHOUSE_DLP_HASH_KEY"
    hash_length: int = 12
    max_scan_chars: int = DEFAULT_MAX_SCAN_CHARS
    default_policy: str = "default"
    policies: dict[str, NamedPolicy] = field(
        default_factory=lambda: {"default": NamedPolicy("default", {"default": ActionSpec()})}
    )
    # The optional NER model, loaded with the policy; None (the default) never touches spaCy.
    ner: NerRecognizer | None = field(default=None, compare=False)

    def policy(self, name: str | None = None) -> NamedPolicy:
        """The named policy (an identity binding picks one), or the default policy."""
        key = name or self.default_policy
        if key not in self.policies:
            raise KeyError(f"no DLP policy named {key!r}")
        return self.policies[key]


def load_dlp_policy(path: str | Path) -> DlpPolicy:
    """Read and validate ``path``; raise :class:`PolicyError` naming file:line:field."""
    doc = load_policy_file(Path(path))
    return _Validator(doc).policy(doc.data)


class _Validator:
    """Checks the plain data, raising the first error with its file:line:field."""

    def __init__(self, doc: PolicyDocument) -> None:
        self.doc = doc

    def fail(self, path: Path_, message: str) -> PolicyError:
        return self.doc.error(path, message)

    def mapping(self, value: Any, path: Path_, allowed: tuple[str, ...] | None) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {type(value).__name__}")
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    raise self.fail(
                        (*path, key), f"unknown field (expected one of {', '.join(allowed)})"
                    )
        return value

    def strings(self, value: Any, path: Path_) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(path, "expected a list of strings")
        return tuple(value)

    def number(self, value: Any, path: Path_, low: float, high: float) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise self.fail(path, f"expected a number from {low} to {high}, got {value!r}")
        return float(value)

    def regex(self, value: Any, path: Path_) -> str:
        if not isinstance(value, str):
            raise self.fail(path, "expected a regular expression string")
        try:
            re.compile(value)
        except re.error as e:
            raise self.fail(path, f"invalid regular expression: {e}") from e
        return value

    def policy(self, data: Any) -> DlpPolicy:
        top = self.mapping(
            data,
            (),
            (
                "version",
                "min_score",
                "detect",
                "custom_entities",
                "allow_list",
                "hash",
                "limits",
                "default_policy",
                "policies",
                "ner",
            ),
        )
        if top.get("version", 1) != 1:
            raise self.fail(("version",), "only version 1 is understood")
        detect = self.mapping(
            top.get("detect"),
            ("detect",),
            ("pii", "phone_regions", "national_ids", "secrets", "decode_base64"),
        )
        pii = self.strings(detect.get("pii", list(BUILTIN_PII)), ("detect", "pii"))
        for i, name in enumerate(pii):
            if name not in BUILTIN_PII:
                raise self.fail(("detect", "pii", i), f"unknown built-in entity {name!r}")
        regions = self._phone_regions(detect)
        ids = self.strings(
            detect.get("national_ids", list(DEFAULT_NATIONAL_IDS)), ("detect", "national_ids")
        )
        self._check_presidio(ids)
        secrets_value = detect.get("secrets", "all")
        secrets: tuple[str, ...] | None = None
        if secrets_value != "all":
            secrets = self.strings(secrets_value, ("detect", "secrets"))
            for i, name in enumerate(secrets):
                if name not in SECRET_ENTITIES:
                    raise self.fail(("detect", "secrets", i), f"unknown secret type {name!r}")
        decode = detect.get("decode_base64", True)
        if not isinstance(decode, bool):
            raise self.fail(("detect", "decode_base64"), "expected true or false")
        customs = self._customs(top.get("custom_entities"))
        allow = self.mapping(top.get("allow_list"), ("allow_list",), ("values", "patterns"))
        allow_values = self.strings(allow.get("values"), ("allow_list", "values"))
        allow_patterns = tuple(
            self.regex(p, ("allow_list", "patterns", i))
            for i, p in enumerate(self.strings(allow.get("patterns"), ("allow_list", "patterns")))
        )
        hashing = self.mapping(top.get("hash"), ("hash",), ("key_env", "length"))
        key_env = hashing.get("key_env", "TOLLHOUSE_DLP_HASH_KEY")
        if not isinstance(key_env, str) or not key_env:
            raise self.fail(("hash", "key_env"), "expected the name of an environment variable")
        length = int(self.number(hashing.get("length", 12), ("hash", "length"), 6, 64))
        limits = self.mapping(top.get("limits"), ("limits",), ("max_scan_chars",))
        max_chars = limits.get("max_scan_chars", DEFAULT_MAX_SCAN_CHARS)
        if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1000:
            raise self.fail(
                ("limits", "max_scan_chars"), "expected a whole number of characters, 1000 or more"
            )
        min_score = self.number(top.get("min_score", 0.5), ("min_score",), 0.0, 1.0)
        ner = self._ner(top.get("ner"), min_score) if "ner" in top else None
        known = set(pii) | set(SECRET_ENTITIES) | {c.name for c in customs} | set(GROUPS)
        known |= {"US_SSN", "default"} | set(self._presidio_entities(ids))
        known |= set(ner[1]) if ner else set()
        policies = self._policies(top.get("policies"), known)
        default = top.get("default_policy", next(iter(policies)))
        if default not in policies:
            raise self.fail(("default_policy",), f"no policy named {default!r} under policies")
        return DlpPolicy(
            source=str(self.doc.file),
            min_score=min_score,
            pii=pii,
            national_ids=ids,
            phone_regions=regions,
            secrets=secrets,
            decode_base64=decode,
            custom_entities=customs,
            allow_values=allow_values,
            allow_patterns=allow_patterns,
            hash_key_env=key_env,
            hash_length=length,
            max_scan_chars=max_chars,
            default_policy=default,
            policies=policies,
            # Last, once everything else is valid: loading a model takes seconds.
            ner=self._load_ner(*ner) if ner else None,
        )

    def _phone_regions(self, detect: dict[str, Any]) -> tuple[str, ...]:
        """``detect.phone_regions``: ISO 3166 codes phonenumbers knows, or "EU" / "UK"."""
        import phonenumbers

        path: Path_ = ("detect", "phone_regions")
        regions = self.strings(detect.get("phone_regions", list(DEFAULT_PHONE_REGIONS)), path)
        if not regions:
            raise self.fail(path, "expected at least one region (e.g. [EU, GB, US])")
        for i, name in enumerate(regions):
            if name not in ("EU", "UK") and name not in phonenumbers.SUPPORTED_REGIONS:
                raise self.fail(
                    (*path, i),
                    f"unknown region {name!r} (expected an upper-case ISO 3166 code, EU or UK)",
                )
        return regions

    def _ner(self, value: Any, min_score: float) -> tuple[str, tuple[str, ...], float, int]:
        """The ``ner`` section checked, not loaded: (model, entities, min_score, max chars)."""
        spec = self.mapping(
            value, ("ner",), ("model", "entities", "min_score", "max_segment_chars")
        )
        model = spec.get("model")
        if not isinstance(model, str) or not model.strip():
            raise self.fail(
                ("ner", "model"), "expected a spaCy model: an installed package or a directory"
            )
        entities = self.strings(
            spec.get("entities", list(DEFAULT_NER_ENTITIES)), ("ner", "entities")
        )
        if not entities:
            raise self.fail(("ner", "entities"), "expected at least one entity type")
        for i, name in enumerate(entities):
            if name not in NER_ENTITIES:
                raise self.fail(
                    ("ner", "entities", i),
                    f"unknown NER entity {name!r} (expected one of {', '.join(NER_ENTITIES)})",
                )
        score = self.number(spec.get("min_score", min_score), ("ner", "min_score"), 0.0, 1.0)
        cap = spec.get("max_segment_chars", DEFAULT_NER_MAX_SEGMENT_CHARS)
        if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= 1_000_000:
            raise self.fail(
                ("ner", "max_segment_chars"),
                f"expected a whole number of characters from 1 to 1000000, got {cap!r}",
            )
        return model.strip(), tuple(dict.fromkeys(entities)), score, cap

    def _load_ner(
        self, model: str, entities: tuple[str, ...], min_score: float, cap: int
    ) -> NerRecognizer:
        try:
            return load_ner(model, entities, min_score, cap, self.doc.file.parent)
        except NerError as e:
            raise self.fail(("ner", e.field), str(e)) from e

    def _check_presidio(self, ids: tuple[str, ...]) -> None:
        import presidio_analyzer.predefined_recognizers as predefined

        for i, name in enumerate(ids):
            if not hasattr(predefined, name):
                raise self.fail(
                    ("detect", "national_ids", i), f"presidio has no recognizer {name!r}"
                )

    @staticmethod
    def _presidio_entities(ids: tuple[str, ...]) -> list[str]:
        import presidio_analyzer.predefined_recognizers as predefined

        return [getattr(predefined, n)().supported_entities[0] for n in ids]

    def _customs(self, value: Any) -> tuple[CustomEntity, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            raise self.fail(("custom_entities",), "expected a list of entities")
        out = []
        for i, item in enumerate(value):
            path: Path_ = ("custom_entities", i)
            spec = self.mapping(
                item,
                path,
                ("name", "patterns", "deny_list", "context", "validator", "ignore_case", "label"),
            )
            name = spec.get("name")
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise self.fail((*path, "name"), "expected an UPPER_CASE entity name")
            patterns = []
            for j, p in enumerate(spec.get("patterns") or []):
                ppath: Path_ = (*path, "patterns", j)
                p = self.mapping(p, ppath, ("regex", "score"))
                if "regex" not in p:
                    raise self.fail(ppath, "a pattern needs a regex")
                regex = self.regex(p["regex"], (*ppath, "regex"))
                patterns.append((regex, self.number(p.get("score", 0.8), (*ppath, "score"), 0, 1)))
            deny = self.strings(spec.get("deny_list"), (*path, "deny_list"))
            if not patterns and not deny:
                raise self.fail(path, "a custom entity needs patterns or a deny_list")
            validator = spec.get("validator")
            if validator is not None and validator not in VALIDATORS:
                raise self.fail(
                    (*path, "validator"),
                    f"unknown validator {validator!r} (known: {', '.join(VALIDATORS)})",
                )
            out.append(
                CustomEntity(
                    name=name,
                    patterns=tuple(patterns),
                    deny_list=deny,
                    context=self.strings(spec.get("context"), (*path, "context")),
                    validator=validator,
                    ignore_case=bool(spec.get("ignore_case", False)),
                    label=spec.get("label"),
                )
            )
        return tuple(out)

    def _policies(self, value: Any, known: set[str]) -> dict[str, NamedPolicy]:
        raw = self.mapping(value, ("policies",), None)
        if not raw:
            raise self.fail(("policies",), "at least one named policy is required")
        out: dict[str, NamedPolicy] = {}
        pending = dict(raw)
        while pending:  # resolve "extends" in dependency order
            progressed = False
            for name, body in list(pending.items()):
                path: Path_ = ("policies", name)
                body = self.mapping(body, path, ("extends", "actions", "attachments"))
                parent = body.get("extends")
                if parent is not None and parent not in raw:
                    raise self.fail((*path, "extends"), f"no policy named {parent!r}")
                if parent is not None and parent not in out:
                    continue
                base = out[parent] if parent else None
                actions = dict(base.actions) if base else {}
                acts = self.mapping(body.get("actions"), (*path, "actions"), None)
                for entity, spec in acts.items():
                    apath: Path_ = (*path, "actions", entity)
                    if entity in NER_ENTITIES and entity not in known:
                        raise self.fail(
                            apath, f"{entity} is found only by NER: list it under ner.entities"
                        )
                    if entity not in known:
                        raise self.fail(apath, f"unknown entity type or group {entity!r}")
                    actions[entity] = self._action(spec, apath)
                attachments = body.get("attachments", base.attachments if base else "log")
                if attachments not in ATTACHMENT_MODES:
                    raise self.fail(
                        (*path, "attachments"),
                        f"expected one of {', '.join(ATTACHMENT_MODES)}, got {attachments!r}",
                    )
                out[name] = NamedPolicy(name, actions, attachments)
                del pending[name]
                progressed = True
            if not progressed:
                name = next(iter(pending))
                raise self.fail(
                    ("policies", name, "extends"), "policies extend each other in a cycle"
                )
        return out

    def _action(self, spec: Any, path: Path_) -> ActionSpec:
        if isinstance(spec, str):
            spec = {"action": spec}
        spec = self.mapping(spec, path, ("action", "restore", "keep"))
        action = spec.get("action")
        if action not in ACTIONS:
            raise self.fail(
                (*path, "action") if "action" in spec else path,
                f"unknown action {action!r} (expected one of {', '.join(ACTIONS)})",
            )
        restore = spec.get("restore", False)
        if not isinstance(restore, bool):
            raise self.fail((*path, "restore"), "expected true or false")
        if restore and action != "redact":
            raise self.fail((*path, "restore"), "restore works only with action: redact")
        keep = int(self.number(spec.get("keep", 4), (*path, "keep"), 0, 16))
        return ActionSpec(action, restore, keep)
