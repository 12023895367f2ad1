"""Scoring an exchange for prompt injection: hits → score → verdict.

Detection returns findings; what happens to the request (403, header, audit mark) is the
addon's job. The verdict carries rule ids, categories, roles and JSON paths — never the matched
text, so neither the block message nor the audit log echoes an attack back.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from tollhouse.exchange import Exchange, Role, Segment
from tollhouse.injection.matcher import Matcher
from tollhouse.injection.policy import InjectionPolicy, ScanPolicy

__all__ = ["Classifier", "Hit", "InjectionScanner", "InjectionVerdict", "Verdict"]

Verdict = Literal["allow", "flag", "block"]
CLASSIFIER_RULE = "classifier"


@runtime_checkable
class Classifier(Protocol):
    """An optional model that scores text for injection, 0.0 (benign) … 1.0 (injection).

    None ships with Tollhouse. Its score is weighted by the policy's ``classifier_weight`` and
    combined with the rules of the segment's role like one more rule (role trust then applies).
    """

    def score(self, text: str) -> float: ...


@dataclass(frozen=True, slots=True)
class Hit:
    """One rule that fired, where, and through which view (``via``: "", "base64", …)."""

    rule: str
    category: str
    role: str
    location: str
    via: str = ""


@dataclass(slots=True)
class InjectionVerdict:
    """The outcome for one request: a score in [0, 1], a verdict and the rules behind it."""

    score: float
    verdict: Verdict
    rules: list[str]
    hits: list[Hit] = field(default_factory=list)
    policy: str = ""

    def as_json(self) -> dict[str, object]:
        """``{"score", "verdict", "rules"}`` for ``tollhouse scan`` and the audit record."""
        return {"score": round(self.score, 4), "verdict": self.verdict, "rules": list(self.rules)}

    def header_value(self) -> str:
        """For a response header on flagged requests, e.g. ``flag; score=0.62; rules=a,b``."""
        return f"{self.verdict}; score={self.score:.2f}; rules={','.join(self.rules)}"

    def block_message(self) -> str:
        """The client-facing reason for a block: rule ids only, never the offending text."""
        rules = ", ".join(self.rules) or "policy"
        return (
            "Request blocked by the gateway: the prompt looks like a prompt-injection attempt "
            f"(score {self.score:.2f}; rules: {rules}). "
            "Contact your security team if this is wrong."
        )


def _combine(weights: Iterable[float]) -> float:
    """Noisy-OR: 1 - Π(1 - w).

    Each rule is independent evidence: one strong rule decides on its own, several weak ones
    add up, and the score never passes 1. A capped sum would let three 0.35 cues reach 1.0;
    noisy-OR gives 0.73, which is closer to how much three weak cues actually prove.
    """
    keep = 1.0
    for w in weights:
        keep *= 1.0 - w
    return 1.0 - keep


class InjectionScanner:
    """Scores prompts against a rule pack. Build once per pack; ``check`` is thread-safe."""

    def __init__(self, pack: InjectionPolicy, classifier: Classifier | None = None) -> None:
        self.pack = pack
        self.classifier = classifier
        self._matcher = Matcher(pack.rules)

    @property
    def policy_names(self) -> list[str]:
        """Names of the pack's policies, for identity bindings to pick from."""
        return sorted(self.pack.policies)

    def check(
        self, exchange_or_segments: Exchange | Iterable[Segment], policy: str | None = None
    ) -> InjectionVerdict:
        """Score every segment by its role's trust under ``policy`` (default: the pack's).

        Evidence is combined per role, then scaled by that role's trust: a role's score is
        ``trust * (1 - Π(1 - weight))`` over the rules that fired in its segments, and the
        request's score is its most suspicious role's. So trust is a ceiling: under
        ``standard`` (tool results trusted 0.8) a document that quotes attacks, as security
        training does, is flagged but cannot reach the block threshold however many rules it
        trips; a policy that trusts tools 1.0 (``strict``) blocks it. Each rule counts once per
        role, with its weight, so a long conversation that repeats one weak phrase does not
        add up to a block. Segments whose role has trust 0 (the system prompt, by default) are
        not scanned at all.
        """
        pol = self.pack.policy(policy)
        segments = (
            exchange_or_segments.segments
            if isinstance(exchange_or_segments, Exchange)
            else exchange_or_segments
        )
        per_role: dict[str, dict[str, float]] = {}  # role -> rule id -> weight
        hits: list[Hit] = []
        seen: dict[str, list[tuple[int, str]]] = {}
        for seg in segments:
            trust = pol.trust(seg.role)
            if trust <= 0.0 or not seg.text:
                continue
            fired = per_role.setdefault(seg.role, {})
            matched = seen.get(seg.text)
            if matched is None:  # repeated short strings (JSON keys, enum values): scanned once
                matched = seen[seg.text] = sorted(self._matcher.scan(seg.text).items())
            for i, via in matched:
                rule = self.pack.rules[i]
                if not pol.enabled(rule) or not rule.applies_to(seg.role):
                    continue
                hits.append(Hit(rule.id, rule.category, seg.role, seg.location, via))
                fired[rule.id] = max(fired.get(rule.id, 0.0), rule.weight)
            self._classify(seg, pol, fired, hits)
        score = max(
            (pol.trust(role) * _combine(fired.values()) for role, fired in per_role.items()),
            default=0.0,
        )
        rules = sorted({rid for fired in per_role.values() for rid, w in fired.items() if w > 0})
        return InjectionVerdict(score, self._verdict(score, pol), rules, hits, pol.name)

    def check_text(
        self, text: str, policy: str | None = None, role: str = Role.USER
    ) -> InjectionVerdict:
        """Score one text as a ``role`` turn (a user turn by default), e.g. for the CLI."""
        return self.check([Segment(role, (), text)], policy)

    def _classify(
        self, seg: Segment, pol: ScanPolicy, fired: dict[str, float], hits: list[Hit]
    ) -> None:
        if self.classifier is None or pol.classifier_weight <= 0.0:
            return
        raw = float(self.classifier.score(seg.text))
        weight = min(max(raw, 0.0), 1.0) * pol.classifier_weight
        if weight > 0.0:
            hits.append(Hit(CLASSIFIER_RULE, "classifier", seg.role, seg.location))
            fired[CLASSIFIER_RULE] = max(fired.get(CLASSIFIER_RULE, 0.0), weight)

    @staticmethod
    def _verdict(score: float, pol: ScanPolicy) -> Verdict:
        if pol.block is not None and score >= pol.block:
            return "block"
        if score >= pol.flag:
            return "flag"
        return "allow"
