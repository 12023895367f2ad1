"""Budgets as finance writes them (rules/budgets.yaml), validated with file:line:field errors.

A budget caps spend in USD or tokens for one scope — team, app, user, provider, model, or a
combination — per calendar period. A scope value is a name, a pattern (``gpt-4o*``: one budget
shared by every match) or ``*`` alone (one budget *each*: every team gets its own). Where a
``*`` budget and a named one resolve to the same key (``team:payments/month``), the named one wins.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tollhouse.budget.periods import PERIODS
from tollhouse.policyfile import FieldPath, PolicyDocument, load_policy_file

SCOPE_KEYS = ("team", "app", "user", "provider", "model")
"""Scope dimensions, in the order they appear in a budget key."""
ACTIONS = ("block", "downgrade")
EACH = "*"


class Unit:
    USD = "usd"
    TOKENS = "tokens"


@dataclass(frozen=True, slots=True)
class Budget:
    """One rule of budgets.yaml."""

    scope: tuple[tuple[str, str], ...]  # (dimension, value) in SCOPE_KEYS order
    period: str
    unit: str
    limit: Decimal  # USD or tokens
    warn_at: Decimal  # fraction of the limit, 0 < warn_at <= 1
    on_cap: str = "block"
    chain: tuple[str, ...] = ()  # models, most expensive first; set when on_cap is downgrade
    chain_name: str | None = None
    downgrade_at: Decimal = Decimal(1)  # fraction of the limit where downgrading starts
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    @property
    def rule(self) -> str:
        """The rule as a key: ``team:*+model:gpt-4o/month``; ``all/day`` for a global budget."""
        return _key(self.scope, self.period)

    @property
    def each(self) -> int:
        """How many dimensions are ``*`` (one budget per value): the less, the more specific."""
        return sum(1 for _, value in self.scope if value == EACH)

    def resolve(self, facts: Mapping[str, str | None]) -> str | None:
        """The budget key this rule charges for an exchange with ``facts`` (dimension → value),
        or None when the rule does not apply (a value differs, or the exchange lacks it)."""
        resolved = []
        for dimension, pattern in self.scope:
            value = facts.get(dimension)
            if not value or not fnmatch.fnmatchcase(value, pattern):
                return None
            resolved.append((dimension, value if pattern == EACH else pattern))
        return _key(tuple(resolved), self.period)

    def next_model(self, model: str | None) -> str | None:
        """The next cheaper model on this budget's downgrade chain after ``model``, if any."""
        if self.on_cap != "downgrade" or model not in self.chain:
            return None
        index = self.chain.index(model)
        return self.chain[index + 1] if index + 1 < len(self.chain) else None


def _key(scope: tuple[tuple[str, str], ...], period: str) -> str:
    body = "+".join(f"{dimension}:{value}" for dimension, value in scope) or "all"
    return f"{body}/{period}"


@dataclass(frozen=True, slots=True)
class BudgetPolicy:
    """Everything budgets.yaml says. An empty policy (no file) has no budgets."""

    budgets: tuple[Budget, ...] = ()
    max_output_tokens: int = 4096  # the worst case for a request that sets no maximum
    unpriced: str = "block"  # a USD budget applies but the model has no price: block or allow
    webhook: str | None = None
    timezone: str = "UTC"

    def applicable(self, facts: Mapping[str, str | None]) -> list[tuple[Budget, str]]:
        """Every (budget, key) that applies; where two rules resolve to one key, the more
        specific (fewer ``*``) rule wins, then the earlier."""
        chosen: dict[str, Budget] = {}
        for budget in self.budgets:
            key = budget.resolve(facts)
            if key is not None and (key not in chosen or budget.each < chosen[key].each):
                chosen[key] = budget
        return [(budget, key) for key, budget in chosen.items()]


_TOP = {"version", "timezone", "defaults", "notify", "chains", "budgets"}
_DEFAULTS = {"warn_at", "max_output_tokens", "unpriced"}
_RULE = {
    "scope",
    "period",
    "limit_usd",
    "limit_tokens",
    "warn_at",
    "on_cap",
    "chain",
    "downgrade_at",
    "timezone",
}


def _mapping(doc: PolicyDocument, path: FieldPath, value: object) -> dict[str, object]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise doc.error(path, "must be a mapping")
    return value


def _check_keys(doc: PolicyDocument, path: FieldPath, value: dict, allowed: set[str]) -> None:
    if extra := set(value) - allowed:
        raise doc.error((*path, sorted(extra)[0]), f"unknown key; use {', '.join(sorted(allowed))}")


def _percent(doc: PolicyDocument, path: FieldPath, value: object) -> Decimal:
    """``80``, ``80%`` or ``"80 %"`` → 0.8."""
    text = value.strip().rstrip("%").strip() if isinstance(value, str) else value
    try:
        if isinstance(text, bool):
            raise ValueError
        number = Decimal(str(text))
    except (ArithmeticError, ValueError):
        raise doc.error(path, "must be a percentage such as 80 or '80%'") from None
    if not 0 < number <= 100:
        raise doc.error(path, "must be a percentage above 0 and at most 100")
    return number / 100


def _zone(doc: PolicyDocument, path: FieldPath, value: object) -> ZoneInfo:
    if not isinstance(value, str) or not value:
        raise doc.error(path, "must be a time zone name such as UTC or Europe/Berlin")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise doc.error(path, f"unknown time zone {value!r}") from None


def _limit(doc: PolicyDocument, path: FieldPath, value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise doc.error(path, "must be a positive number")
    return Decimal(str(value))


def _scope(doc: PolicyDocument, path: FieldPath, value: object) -> tuple[tuple[str, str], ...]:
    scope = _mapping(doc, path, value)
    for dimension, item in scope.items():
        if dimension not in SCOPE_KEYS:
            raise doc.error((*path, dimension), f"unknown scope; use {', '.join(SCOPE_KEYS)}")
        if not isinstance(item, str) or not item.strip():
            raise doc.error((*path, dimension), "must be a name, a pattern, or '*' for each")
    return tuple((d, str(scope[d]).strip()) for d in SCOPE_KEYS if d in scope)


def _chains(doc: PolicyDocument, value: object) -> dict[str, tuple[str, ...]]:
    chains: dict[str, tuple[str, ...]] = {}
    for name, models in _mapping(doc, ("chains",), value).items():
        path = ("chains", name)
        if not isinstance(models, list) or len(models) < 2:
            raise doc.error(path, "must list at least two models, most expensive first")
        for i, model in enumerate(models):
            if not isinstance(model, str) or not model:
                raise doc.error((*path, i), "must be a model name")
        if len(set(models)) != len(models):
            raise doc.error(path, "lists a model twice")
        chains[name] = tuple(models)
    return chains


def _budget(
    doc: PolicyDocument,
    path: FieldPath,
    item: object,
    chains: dict[str, tuple[str, ...]],
    warn_default: Decimal,
    tz_default: ZoneInfo,
) -> Budget:
    rule = _mapping(doc, path, item)
    _check_keys(doc, path, rule, _RULE)
    period = rule.get("period")
    if period not in PERIODS:
        raise doc.error((*path, "period"), f"required; one of {', '.join(PERIODS)}")
    if ("limit_usd" in rule) == ("limit_tokens" in rule):
        raise doc.error(path, "needs exactly one of limit_usd or limit_tokens")
    unit = Unit.USD if "limit_usd" in rule else Unit.TOKENS
    limit_field = f"limit_{unit}"
    limit = _limit(doc, (*path, limit_field), rule[limit_field])
    on_cap = rule.get("on_cap", "block")
    if on_cap not in ACTIONS:
        raise doc.error((*path, "on_cap"), f"must be one of {', '.join(ACTIONS)}")
    chain_name = rule.get("chain")
    chain: tuple[str, ...] = ()
    if on_cap == "downgrade":
        if not isinstance(chain_name, str) or chain_name not in chains:
            known = ", ".join(sorted(chains)) or "none defined under `chains`"
            raise doc.error((*path, "chain"), f"downgrade needs a chain name ({known})")
        chain = chains[chain_name]
    elif chain_name is not None:
        raise doc.error((*path, "chain"), "only used with on_cap: downgrade")
    return Budget(
        scope=_scope(doc, (*path, "scope"), rule.get("scope")),
        period=str(period),
        unit=unit,
        limit=limit,
        warn_at=_percent(doc, (*path, "warn_at"), rule["warn_at"])
        if "warn_at" in rule
        else warn_default,
        on_cap=str(on_cap),
        chain=chain,
        chain_name=chain_name if chain else None,
        downgrade_at=_percent(doc, (*path, "downgrade_at"), rule["downgrade_at"])
        if "downgrade_at" in rule
        else Decimal(1),
        tz=_zone(doc, (*path, "timezone"), rule["timezone"]) if "timezone" in rule else tz_default,
    )


def parse_budget_policy(doc: PolicyDocument) -> BudgetPolicy:
    """Validate a parsed budgets.yaml. Raises PolicyError naming file, line and field."""
    top = _mapping(doc, (), doc.data)
    _check_keys(doc, (), top, _TOP)
    timezone = top.get("timezone", "UTC")
    tz = _zone(doc, ("timezone",), timezone)
    defaults = _mapping(doc, ("defaults",), top.get("defaults"))
    _check_keys(doc, ("defaults",), defaults, _DEFAULTS)
    warn = _percent(doc, ("defaults", "warn_at"), defaults.get("warn_at", 80))
    max_out = defaults.get("max_output_tokens", 4096)
    if isinstance(max_out, bool) or not isinstance(max_out, int) or max_out < 0:
        raise doc.error(("defaults", "max_output_tokens"), "must be a whole number, 0 or more")
    unpriced = defaults.get("unpriced", "block")
    if unpriced not in ("block", "allow"):
        raise doc.error(("defaults", "unpriced"), "must be block or allow")
    notify = _mapping(doc, ("notify",), top.get("notify"))
    _check_keys(doc, ("notify",), notify, {"webhook"})
    webhook = notify.get("webhook")
    if webhook is not None and (
        not isinstance(webhook, str) or not webhook.startswith(("http://", "https://"))
    ):
        raise doc.error(("notify", "webhook"), "must be an http:// or https:// URL")
    chains = _chains(doc, top.get("chains"))
    items = top.get("budgets") or []
    if not isinstance(items, list):
        raise doc.error(("budgets",), "must be a list")
    budgets: list[Budget] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        budget = _budget(doc, ("budgets", i), item, chains, warn, tz)
        if budget.rule in seen:
            raise doc.error(
                ("budgets", i), f"same scope and period as budgets[{seen[budget.rule]}]"
            )
        seen[budget.rule] = i
        budgets.append(budget)
    return BudgetPolicy(
        budgets=tuple(budgets),
        max_output_tokens=max_out,
        unpriced=str(unpriced),
        webhook=webhook,
        timezone=str(timezone),
    )


def load_budget_policy(path: Path) -> BudgetPolicy:
    """Load rules/budgets.yaml; a missing file means no budgets. Raises PolicyError."""
    if not path.exists():
        return BudgetPolicy()
    return parse_budget_policy(load_policy_file(path))
