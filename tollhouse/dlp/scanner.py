"""The DLP stage: scan every segment of an exchange and apply the policy's actions.

The addon's whole job is::

    result = scanner.inspect(exchange, policy_name)   # raises DlpError: block (fail closed)
    if result.blocked: answer 403 naming result.blocked_types
    audit rows: result.audit_rows()                    # never contains a protected value
    keep result.restore_map for the response (see tollhouse.dlp.restore.Restorer)
"""

from __future__ import annotations

import hashlib
import hmac
import os
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field

from tollhouse.dlp.engine import Detection, Detector
from tollhouse.dlp.policy import ActionSpec, DlpPolicy, NamedPolicy
from tollhouse.dlp.recognizers import Rule, builtin_rules, custom_rule, secret_rules
from tollhouse.dlp.split import SplitFinder, merge_fragments
from tollhouse.exchange import Exchange

__all__ = ["DlpError", "DlpResult", "DlpScanner", "Finding", "TooLargeToScan"]


class DlpError(RuntimeError):
    """Scanning failed; the request must be blocked (fail closed). Never holds a scanned value:
    its message is safe to log and to put in the audit record."""


class TooLargeToScan(DlpError):
    """The exchange holds more text than the policy's ``limits.max_scan_chars``: refuse it."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One entity found. Offsets are characters of the ORIGINAL segment text (before rewrite)."""

    entity_type: str
    start: int
    end: int
    score: float
    detector: str
    action: str
    segment: int = -1  # index into exchange.segments; -1 for a bare text scan
    location: str = ""  # the segment's JSON path, e.g. "$.messages[1].content"


@dataclass
class DlpResult:
    """What the DLP stage found and did to one exchange."""

    findings: list[Finding] = field(default_factory=list)
    blocked: bool = False
    blocked_types: list[str] = field(default_factory=list)  # entity types, never values
    restore_map: dict[str, str] = field(default_factory=dict)  # placeholder -> original
    attachments: str = "pass"  # what happened to attachments: "pass", "log" or "block"
    policy: str = ""
    ner_skipped: list[str] = field(default_factory=list)  # segments too long for NER (locations)
    _rows: list[dict[str, object]] | None = field(default=None, repr=False)  # set by compact()
    _counts: dict[str, int] | None = field(default=None, repr=False)

    @property
    def reason(self) -> str:
        """A message for the client and the audit, naming entity types only."""
        if not self.blocked:
            return ""
        return "request blocked by data loss prevention policy: " + ", ".join(self.blocked_types)

    def action_counts(self) -> dict[str, int]:
        """How many findings of each ``ENTITY_TYPE:action``, e.g. for the audit's dlp_actions."""
        if self._counts is not None:
            return dict(self._counts)
        counts: dict[str, int] = {}
        for finding in self.findings:
            key = f"{finding.entity_type}:{finding.action}"
            counts[key] = counts.get(key, 0) + 1
        return counts

    def compact(self, stage: str = "dlp") -> DlpResult:
        """This result with its findings folded into audit rows and counts: what a stage needs,
        at a size that does not grow with the prompt (thousands of findings in a huge paste)."""
        rows, counts = self.audit_rows(stage), self.action_counts()
        self.findings = []
        self._rows, self._counts = rows, counts
        return self

    def audit_rows(self, stage: str = "dlp") -> list[dict[str, object]]:
        """Rows for the audit ``findings`` table (the addon adds ``exchange_id``)."""
        if self._rows is not None:
            return [dict(row) for row in self._rows]
        counts: dict[tuple[str, str, str, str], int] = {}
        for f in self.findings:
            key = (f.detector, f.entity_type, f.action, f.location)
            counts[key] = counts.get(key, 0) + 1
        return finding_rows(counts, stage)


def finding_rows(
    counts: Mapping[tuple[str, str, str, str], int], stage: str = "dlp"
) -> list[dict[str, object]]:
    """Rows for the audit ``findings`` table from counts by (detector, entity type, action,
    location)."""
    return [
        {
            "stage": stage,
            "detector": d,
            "entity_type": e,
            "action": a,
            "count": n,
            "location": loc,
        }
        for (d, e, a, loc), n in counts.items()
    ]


class DlpScanner:
    """Build once per loaded policy (compiles every rule); :meth:`inspect` is then cheap."""

    def __init__(self, policy: DlpPolicy) -> None:
        self.policy = policy
        rules: list[Rule] = [
            r
            for r in builtin_rules(policy.national_ids, policy.phone_regions)
            if r.group != "pii" or r.entity in policy.pii or r.name in policy.national_ids
        ]
        rules.extend(secret_rules(policy.secrets))
        for c in policy.custom_entities:
            rules.append(
                custom_rule(
                    c.name, c.patterns, c.deny_list, c.context, c.validator, c.ignore_case, c.label
                )
            )
        self._rules = {r.name: r for r in rules}
        self._split = SplitFinder(policy.secrets)
        self.detector = Detector(
            rules,
            min_score=policy.min_score,
            allow_values=policy.allow_values,
            allow_patterns=policy.allow_patterns,
            decode_base64=policy.decode_base64,
            ner=policy.ner,
        )
        for rule in self.detector.ner_rules.values():  # one detector name, all group "pii"
            self._rules.setdefault(rule.name, rule)

    def missing_hash_key(self) -> str | None:
        """Why requests will be refused for want of a hash key, or None when none is missing."""
        users = sorted(
            name
            for name, named in self.policy.policies.items()
            if any(spec.action == "hash" for spec in named.actions.values())
        )
        if not users or os.environ.get(self.policy.hash_key_env):
            return None
        return (
            f"policies {', '.join(users)} use the hash action but ${self.policy.hash_key_env} "
            "is not set: requests they would hash are refused"
        )

    def scan_text(self, text: str, policy_name: str | None = None) -> list[Finding]:
        """Findings in ``text`` with the action the policy gives each; the text is not changed."""
        named = self.policy.policy(policy_name)
        found = [self._finding(d, named) for d in resolve_overlaps(self.detector.detect(text))]
        return merge_fragments(found, self._fragments([text], named).get(0, []))

    def inspect(self, exchange: Exchange, policy_name: str | None = None) -> DlpResult:
        """Scan every segment, rewrite it by policy through ``exchange.set_text``.

        Raises :class:`DlpError` on any failure, so the caller blocks instead of sending
        unscanned text. On a block, segments are left unchanged.
        """
        try:
            return self._inspect(exchange, policy_name)
        except DlpError:
            raise
        except Exception as e:  # fail closed: whatever broke, nothing unscanned goes out
            raise DlpError(f"DLP scan failed: {type(e).__name__}") from e

    def _inspect(self, exchange: Exchange, policy_name: str | None) -> DlpResult:
        named = self.policy.policy(policy_name)
        size = sum(len(s.text) for s in exchange.segments)
        if size > self.policy.max_scan_chars:
            raise TooLargeToScan(
                f"the request holds {size} characters of text, more than the "
                f"{self.policy.max_scan_chars} the gateway scans"
            )
        result = DlpResult(policy=named.name)
        per_segment: list[tuple[int, list[Finding]]] = []
        # A request repeats the same short strings many times (JSON keys, "string", "object",
        # role names): each distinct text is detected once.
        seen: dict[str, list[Detection]] = {}
        for i, segment in enumerate(exchange.segments):
            detections = seen.get(segment.text)
            if detections is None:
                detections = resolve_overlaps(self.detector.detect(segment.text))
                seen[segment.text] = detections
            found = [self._finding(d, named, i, segment.location) for d in detections]
            per_segment.append((i, found))
            if self.policy.ner is not None and not self.policy.ner.applies_to(segment.text):
                result.ner_skipped.append(segment.location)
        # A key split into pieces, in one segment or across messages: each piece is the key.
        pieces = self._fragments([s.text for s in exchange.segments], named, exchange)
        for i, found in per_segment:
            found[:] = merge_fragments(found, pieces.get(i, []))
            result.findings.extend(found)
        if exchange.attachments:
            result.attachments = named.attachments
        blocked = {f.entity_type for f in result.findings if f.action == "block"}
        if named.attachments == "block" and exchange.attachments:
            blocked.add("ATTACHMENT")
        if blocked:
            result.blocked = True
            result.blocked_types = sorted(blocked)
            return result
        numbering = _Numbering()
        for i, found in per_segment:
            text = exchange.segments[i].text
            new = self._rewrite(text, found, named, numbering, result.restore_map)
            exchange.set_text(i, new)
        return result

    def _fragments(
        self, texts: list[str], named: NamedPolicy, exchange: Exchange | None = None
    ) -> dict[int, list[Finding]]:
        """Findings for the pieces of split keys, by segment index."""
        out: dict[int, list[Finding]] = {}
        for key in self._split.find(texts):
            spec = named.action_for(key.entity, "secret")
            for seg, start, end in key.fragments:
                location = exchange.segments[seg].location if exchange is not None else ""
                out.setdefault(seg, []).append(
                    Finding(
                        key.entity, start, end, 0.9, f"split:{key.name}", spec.action, seg, location
                    )
                )
        return out

    def _finding(
        self, d: Detection, named: NamedPolicy, segment: int = -1, location: str = ""
    ) -> Finding:
        spec = named.action_for(d.entity, d.rule.group)
        detector = f"base64:{d.rule.name}" if d.via_base64 else d.rule.name
        return Finding(d.entity, d.start, d.end, d.score, detector, spec.action, segment, location)

    def _rewrite(
        self,
        text: str,
        findings: list[Finding],
        named: NamedPolicy,
        numbering: _Numbering,
        restore_map: dict[str, str],
    ) -> str:
        # Placeholders are numbered in reading order; replacements go right to left so the
        # offsets of the findings still to apply stay valid.
        replacements: list[tuple[int, int, str]] = []
        for f in sorted(findings, key=lambda f: f.start):
            if f.action == "allow":
                continue
            value = text[f.start : f.end]
            rule_label = self._label(f)
            spec = named.action_for(f.entity_type, self._group(f))
            replacement = self._replacement(value, f, spec, rule_label, numbering)
            if spec.action == "redact" and spec.restore:
                restore_map[replacement] = value
            replacements.append((f.start, f.end, replacement))
        for start, end, replacement in reversed(replacements):
            text = text[:start] + replacement + text[end:]
        return text

    def _replacement(
        self, value: str, f: Finding, spec: ActionSpec, label: str, numbering: _Numbering
    ) -> str:
        if spec.action == "redact":
            return f"[{label}_{numbering.number(label, value)}]"
        if spec.action == "mask":
            tail = value[-spec.keep :] if spec.keep else ""
            return "****" + tail
        if spec.action == "hash":
            key = os.environ.get(self.policy.hash_key_env, "")
            if not key:  # fail closed: an unkeyed hash of a phone number is easy to reverse
                raise DlpError(
                    f"the hash action for {f.entity_type} needs a key in "
                    f"${self.policy.hash_key_env}, which is not set"
                )
            digest = hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()
            return f"[{label}:{digest[: self.policy.hash_length]}]"
        raise DlpError(f"action {spec.action!r} cannot rewrite text")

    def _rule(self, f: Finding) -> Rule | None:
        return self._rules.get(f.detector.removeprefix("base64:").removeprefix("split:"))

    def _label(self, f: Finding) -> str:
        rule = self._rule(f)
        return (rule.label if rule and rule.label else None) or f.entity_type

    def _group(self, f: Finding) -> str:
        rule = self._rule(f)
        return rule.group if rule else "pii"


class _Numbering:
    """Same value, same number within an exchange: ``[EMAIL_1]`` twice means one address."""

    def __init__(self) -> None:
        self._numbers: dict[tuple[str, str], int] = {}
        self._counts: dict[str, int] = {}

    def number(self, label: str, value: str) -> int:
        key = (label, value)
        if key not in self._numbers:
            self._counts[label] = self._counts.get(label, 0) + 1
            self._numbers[key] = self._counts[label]
        return self._numbers[key]


def resolve_overlaps(detections: list[Detection]) -> list[Detection]:
    """Keep the best of overlapping detections: a pattern's over the NER model's (whatever its
    score: a name the model guessed around a key must not let the key through), then highest
    score, then longest, then secrets."""
    ranked = sorted(
        detections,
        key=lambda d: (d.rule.ner, -d.score, -(d.end - d.start), d.rule.group != "secret", d.start),
    )
    # The kept spans never overlap, so sorted by start they are sorted by end too: a new span
    # can only overlap its neighbours in that order (one bisect instead of a scan of all kept).
    starts: list[int] = []
    kept: list[Detection] = []
    for d in ranked:
        i = bisect_left(starts, d.start)
        if i > 0 and kept[i - 1].end > d.start:
            continue
        if i < len(kept) and kept[i].start < d.end:
            continue
        starts.insert(i, d.start)
        kept.insert(i, d)
    return kept
