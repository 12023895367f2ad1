"""Where each budget stands in its current period: what ``tollhouse budget`` shows."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tollhouse.budget.periods import window
from tollhouse.budget.policy import BudgetPolicy, Unit
from tollhouse.budget.store import MICRO_USD, State


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """One budget (a ``*`` rule gives one per value seen) in its current period."""

    budget: str
    rule: str
    period: str
    unit: str
    limit: float
    spent: float
    reserved: float
    remaining: float
    used_percent: float
    warn_at_percent: float
    on_cap: str
    resets_at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _value(unit: str, units: int) -> float:
    return float(Decimal(units) / MICRO_USD) if unit == Unit.USD else float(units)


def budget_status(policy: BudgetPolicy, states: list[State], now: datetime) -> list[BudgetStatus]:
    """Every budget of ``policy`` in the period containing ``now``, with its spend from
    ``states``; a named budget with no spend yet shows as zero."""
    now = now.astimezone(UTC)
    by_key = {(s.key, s.period): s for s in states}
    out = []
    for budget in policy.budgets:
        span = window(budget.period, budget.tz, now)
        if budget.each:
            found = [s for s in states if s.rule == budget.rule and s.period == span.id]
        else:
            found = [by_key.get((budget.rule, span.id)) or State(budget.rule, span.id, "", 0, 0)]
        for state in found:
            spent = _value(budget.unit, state.spent)
            reserved = _value(budget.unit, state.reserved)
            limit = float(budget.limit)
            out.append(
                BudgetStatus(
                    budget=state.key,
                    rule=budget.rule,
                    period=span.id,
                    unit=budget.unit,
                    limit=limit,
                    spent=spent,
                    reserved=reserved,
                    remaining=max(limit - spent - reserved, 0.0),
                    used_percent=round((spent + reserved) * 100 / limit, 1),
                    warn_at_percent=float(budget.warn_at * 100),
                    on_cap=budget.on_cap
                    if not budget.chain_name
                    else f"downgrade:{budget.chain_name}",
                    resets_at=span.end.isoformat(),
                )
            )
    return out
