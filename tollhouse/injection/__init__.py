"""Prompt-injection defence: a YAML rule pack, a normalized matching view, scores and verdicts.

Typical use (the injection addon, ``tollhouse scan``)::

    pack = load_injection_policy(rules_dir / "injection.yaml")   # validated, compiled once
    scanner = InjectionScanner(pack)
    verdict = scanner.check(exchange, policy=None)                # or check_text(text)
    verdict.verdict            # "allow" | "flag" | "block"
    verdict.as_json()          # {"score": 0.93, "verdict": "block", "rules": [...]}
    verdict.block_message()    # client-facing text that never echoes the attack

Importing this package does nothing but define classes.
"""

from tollhouse.injection.policy import (
    InjectionPolicy,
    InjectionRule,
    PolicyError,
    ScanPolicy,
    load_injection_policy,
)
from tollhouse.injection.scanner import (
    Classifier,
    Hit,
    InjectionScanner,
    InjectionVerdict,
    Verdict,
)

__all__ = [
    "Classifier",
    "Hit",
    "InjectionPolicy",
    "InjectionRule",
    "InjectionScanner",
    "InjectionVerdict",
    "PolicyError",
    "ScanPolicy",
    "Verdict",
    "load_injection_policy",
]
