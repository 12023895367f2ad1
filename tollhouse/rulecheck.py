"""Checking a whole rules folder at once: every policy file, and the names they share.

Security teams edit ``rules/`` by hand; ``tollhouse check`` (and ``tollhouse run`` before it
starts) runs every loader here so that a mistake is found before deployment, as one line naming
the file, the line and the field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tollhouse.policyfile import PolicyError


@dataclass(frozen=True, slots=True)
class FileCheck:
    """The outcome for one policy file: ``error`` is None when it is valid."""

    file: Path
    what: str
    error: str | None = None
    absent: bool = False  # an optional file that is not there


def _loaders() -> list[tuple[str, str, bool, Callable[[Path], Any]]]:
    # Imported here: the DLP loader pulls in presidio, which takes seconds to import.
    from tollhouse.budget.policy import load_budget_policy
    from tollhouse.catalog import load_catalog
    from tollhouse.dlp import load_dlp_policy
    from tollhouse.identity.config import load_identities
    from tollhouse.injection import load_injection_policy
    from tollhouse.pricing import load_price_book

    # (file, what it decides, required, loader)
    return [
        ("hosts.yaml", "host catalog", True, load_catalog),
        ("dlp.yaml", "data leakage policy", True, load_dlp_policy),
        ("injection.yaml", "prompt-injection rules", True, load_injection_policy),
        ("identities.yaml", "identities and bindings", False, load_identities),
        ("budgets.yaml", "budgets", False, load_budget_policy),
        ("prices.yaml", "price overrides", False, load_price_book),
    ]


def check_rules(rules: Path) -> list[FileCheck]:
    """Load every policy file in ``rules``; never raises for a bad file."""
    results: list[FileCheck] = []
    loaded: dict[str, Any] = {}
    for name, what, required, load in _loaders():
        path = rules / name
        if not path.exists() and not required:
            results.append(FileCheck(path, what, absent=True))
            continue
        try:
            loaded[name] = load(path)
        except PolicyError as exc:
            results.append(FileCheck(path, what, str(exc)))
            continue
        results.append(FileCheck(path, what))
    results.extend(_check_profiles(rules, loaded))
    return results


def _check_profiles(rules: Path, loaded: dict[str, Any]) -> list[FileCheck]:
    """A policy name bound in identities.yaml is a profile across stages: each stage applies its
    section of that name or its default. A name no stage defines is almost surely a typo."""
    identities = loaded.get("identities.yaml")
    dlp, injection = loaded.get("dlp.yaml"), loaded.get("injection.yaml")
    if identities is None or dlp is None or injection is None:
        return []
    known = set(dlp.policies) | set(injection.policies)
    unknown = sorted(set(identities.policies) - known)
    if not unknown:
        return []
    message = (
        f"{rules / 'identities.yaml'}: policies: {', '.join(unknown)} defined neither in dlp.yaml "
        f"nor in injection.yaml (known: {', '.join(sorted(known))})"
    )
    return [FileCheck(rules / "identities.yaml", "policy names", message)]


def first_error(rules: Path) -> str | None:
    """The first problem in ``rules``, or None if every file is valid."""
    return next((c.error for c in check_rules(rules) if c.error), None)
