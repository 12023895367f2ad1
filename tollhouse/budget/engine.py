"""The budget engine: price an exchange's worst case, reserve it against every budget that
applies (downgrading along a chain where the policy says so), and settle it when it ends.

It knows nothing of mitmproxy: the budget addon gives it a :class:`Request` and applies the
:class:`Verdict`. ``admit`` does store I/O and must run in a worker thread; settling is queued to
one background thread, so the response path never waits on the store.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tollhouse.budget.notify import Notifier
from tollhouse.budget.periods import window
from tollhouse.budget.policy import Budget, BudgetPolicy, Unit
from tollhouse.budget.store import HOLD_TTL, MICRO_USD, BudgetStore, Charge
from tollhouse.exchange import Operation, Usage
from tollhouse.pricing import PriceBook

log = logging.getLogger("tollhouse.budget")

KEEP = timedelta(days=100)  # how long a period's state is kept after it ends (Redis expiry)
_NO_OUTPUT = frozenset({Operation.EMBEDDINGS})
_NOT_BILLED = frozenset({Operation.COUNT_TOKENS, Operation.UNKNOWN})


@dataclass(frozen=True, slots=True)
class Request:
    """What the budget stage knows of an exchange before it is sent."""

    provider: str | None
    model: str | None
    operation: str
    tokens_in: int
    max_output_tokens: int | None = None
    choices: int = 1  # answers asked for: the worst case is that many full-length answers
    team: str | None = None
    app: str | None = None
    user: str | None = None

    def facts(self, model: str | None) -> dict[str, str | None]:
        return {
            "team": self.team,
            "app": self.app,
            "user": self.user,
            "provider": self.provider,
            "model": model,
        }


@dataclass(frozen=True, slots=True)
class BudgetWarning:
    budget: str  # key, e.g. team:payments/month
    percent: int  # committed share of the limit, this request included

    @property
    def header(self) -> str:
        return f"warn; budget={self.budget}; used={self.percent}%"


@dataclass(frozen=True, slots=True)
class Downgrade:
    requested: str
    sent: str
    budget: str
    reason: str

    @property
    def header(self) -> str:
        return f"downgrade; budget={self.budget}; from={self.requested}; to={self.sent}"


@dataclass
class Verdict:
    """What to do with the exchange. ``blocked`` is the message for the client when refused."""

    model: str | None
    hold: Hold | None = None
    blocked: str | None = None
    budget: str | None = None  # the budget that blocked
    warnings: list[BudgetWarning] = field(default_factory=list)
    downgrades: list[Downgrade] = field(default_factory=list)


@dataclass(slots=True)
class _Planned:
    budget: Budget
    charge: Charge
    worst_usd: Decimal | None


class Unpriced(Exception):
    """A USD budget applies but nobody has a price for the model."""


def _units_usd(cost: Decimal) -> int:
    """Micro-USD, rounded up (a reservation never undercounts) and never below zero: a negative
    price or usage must not free budget for others. Raises ValueError for NaN or infinity."""
    if not cost.is_finite():
        raise ValueError(f"not a cost: {cost}")
    return max(math.ceil(cost * MICRO_USD), 0)


def _show(budget: Budget, units: int) -> str:
    """``$0.50``, ``$0.0071`` (small amounts keep up to four decimals), ``1,200 tokens``."""
    if budget.unit != Unit.USD:
        return f"{units:,} tokens"
    text = f"{Decimal(units) / MICRO_USD:,.4f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


class Hold:
    """A reservation (the ``transit.Reservation`` protocol): closed exactly once, by ``settle``
    with the real cost or by ``release``; a second call does nothing."""

    def __init__(self, engine: BudgetEngine, hold_id: str, planned: Sequence[_Planned]) -> None:
        self.engine, self.id, self.planned = engine, hold_id, list(planned)
        self.closed = False

    @property
    def charges(self) -> list[Charge]:
        return [p.charge for p in self.planned]

    def settle(self, cost_usd: Decimal | None, usage: Usage | None) -> None:
        priced = cost_usd is not None and cost_usd.is_finite()
        actual = []
        for p in self.planned:
            if p.budget.unit == Unit.TOKENS and usage is not None:
                actual.append(max(usage.total_tokens, 0))
            elif p.budget.unit == Unit.USD and priced:
                assert cost_usd is not None
                actual.append(_units_usd(cost_usd))
            else:  # usage came back but cannot be priced: charge the worst case held
                actual.append(p.charge.amount)
        self._close(actual)

    def release(self) -> None:
        self._close([0] * len(self.planned))

    def _close(self, actual: list[int]) -> None:
        if not self.closed:
            self.closed = True
            self.engine.enqueue_settle(self, actual)


class BudgetEngine:
    """Admits exchanges against a :class:`BudgetPolicy` kept in a :class:`BudgetStore`."""

    def __init__(
        self,
        policy: BudgetPolicy,
        store: BudgetStore,
        *,
        clock: Callable[[], float] = time.time,
        hold_ttl: float = HOLD_TTL,
    ) -> None:
        self.store, self.clock, self.hold_ttl = store, clock, hold_ttl
        self.notifier: Notifier | None = None
        self.policy = policy
        self._settles: queue.Queue[tuple[Hold, list[int]] | None] = queue.Queue()
        self._settler = threading.Thread(target=self._settle_loop, name="tollhouse-budget")
        self._settler.daemon = True
        self._settler.start()

    @property
    def policy(self) -> BudgetPolicy:
        return self._policy

    @policy.setter
    def policy(self, policy: BudgetPolicy) -> None:
        """Swap the policy (rules reloaded); a changed webhook gets a new notifier."""
        current = self.notifier.url if self.notifier else None
        if policy.webhook != current:
            if self.notifier is not None:
                self.notifier.close(timeout=0)  # it still sends what it has queued
            self.notifier = Notifier(policy.webhook) if policy.webhook else None
        self._policy = policy

    def applies(self, request: Request) -> bool:
        """Whether any budget applies to the request as sent (cheap, no I/O)."""
        if request.operation in _NOT_BILLED or not self.policy.budgets:
            return False
        return bool(self.policy.applicable(request.facts(request.model)))

    def admit(self, request: Request, prices: PriceBook) -> Verdict:
        """Reserve the request's worst case against every budget that applies, moving down a
        downgrade chain while a downgrade budget has no room. Blocking: run in a worker thread.
        Raises StateError when the store fails."""
        model, tried = request.model, {request.model}
        downgrades: list[Downgrade] = []
        now = self.clock()
        while True:
            try:
                planned = self._plan(request, model, prices, now)
            except Unpriced as exc:
                return Verdict(model, blocked=str(exc), downgrades=downgrades)
            if not planned:
                return Verdict(model, downgrades=downgrades)
            hold_id = uuid.uuid4().hex
            charges = [p.charge for p in planned]
            admission = self.store.reserve(hold_id, charges, now, now + self.hold_ttl)
            if admission.ok:
                verdict = Verdict(model, Hold(self, hold_id, planned), downgrades=downgrades)
                self._warn(verdict, planned, admission.used, admission.first_warn, now)
                return verdict
            assert admission.failed is not None
            full = planned[admission.failed]
            left = max(full.charge.limit - admission.spent - admission.reserved, 0)
            reason = (
                f"budget {full.charge.key} has {_show(full.budget, left)} left of "
                f"{_show(full.budget, _limit_units(full.budget))}, less than this request's "
                f"worst case of {_show(full.budget, full.charge.amount)}"
            )
            cheaper = full.budget.next_model(model)
            if cheaper is not None and cheaper not in tried and model is not None:
                downgrades.append(Downgrade(model, cheaper, full.charge.key, reason))
                model = cheaper
                tried.add(cheaper)
                continue
            end = window(full.budget.period, full.budget.tz, _utc(now)).end
            message = f"{reason}; it resets at {end.isoformat()} ({full.budget.tz.key})"
            return Verdict(model, blocked=message, budget=full.charge.key, downgrades=downgrades)

    def _plan(
        self, request: Request, model: str | None, prices: PriceBook, now: float
    ) -> list[_Planned]:
        applicable = self.policy.applicable(request.facts(model))
        if not applicable:
            return []
        output = 0 if request.operation in _NO_OUTPUT else request.max_output_tokens
        if output is None:
            output = self.policy.max_output_tokens
        output *= max(request.choices, 1)
        # The client sets max_tokens: a negative one must not make a negative reservation.
        worst = Usage(input_tokens=max(request.tokens_in, 0), output_tokens=max(output, 0))
        cost = prices.cost(request.provider, model, worst)
        planned = []
        for budget, key in applicable:
            if budget.unit == Unit.TOKENS:
                amount = worst.total_tokens
            elif cost is not None:
                amount = _units_usd(cost)
            elif self.policy.unpriced == "allow":
                amount = 0  # charged the real cost at settle, if the answer can be priced
            else:
                raise Unpriced(
                    f"budget {key} is in USD, but the gateway has no price for model "
                    f"{model!r}; add it to rules/prices.yaml"
                )
            span = window(budget.period, budget.tz, _utc(now))
            limit = _limit_units(budget)
            if budget.next_model(model) is not None:
                # Not the chain's last model yet: its room ends where downgrading starts.
                limit = int(limit * budget.downgrade_at)
            charge = Charge(
                key=key,
                period=span.id,
                rule=budget.rule,
                limit=limit,
                amount=amount,
                warn=math.ceil(_limit_units(budget) * budget.warn_at),
                keep_until=(span.end + KEEP).timestamp(),
            )
            planned.append(_Planned(budget, charge, cost))
        return planned

    def _warn(
        self,
        verdict: Verdict,
        planned: list[_Planned],
        used: Sequence[int],
        first: Sequence[bool],
        now: float,
    ) -> None:
        for p, units, first_time in zip(planned, used, first, strict=True):
            if units < p.charge.warn:
                continue
            limit = _limit_units(p.budget)
            percent = int(units * 100 // limit)
            verdict.warnings.append(BudgetWarning(p.charge.key, percent))
            if first_time and self.notifier is not None:
                end = window(p.budget.period, p.budget.tz, _utc(now)).end
                self.notifier.notify(
                    {
                        "event": "budget.warn",
                        "budget": p.charge.key,
                        "period": p.charge.period,
                        "used_percent": percent,
                        "warn_at_percent": float(p.budget.warn_at * 100),
                        "unit": p.budget.unit,
                        "limit": float(p.budget.limit),
                        "used": _amount(p.budget, units),
                        "resets_at": end.isoformat(),
                    }
                )

    # --- settling, off the request path ---------------------------------------------------

    def enqueue_settle(self, hold: Hold, actual: list[int]) -> None:
        self._settles.put((hold, actual))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued settle reached the store (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._settles.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._settles.unfinished_tasks

    def close(self) -> None:
        """Settle what is queued, stop the threads and close the store."""
        self._settles.put(None)
        self._settler.join(30)
        if self.notifier is not None:
            self.notifier.close()
        self.store.close()

    def _settle_loop(self) -> None:
        while (item := self._settles.get()) is not None:
            hold, actual = item
            try:
                self.store.settle(hold.id, hold.charges, actual)
            except Exception:
                # The hold expires on its own; the spend is lost, so say so loudly.
                log.exception("could not settle budget hold %s: %s units", hold.id, actual)
            finally:
                self._settles.task_done()
        self._settles.task_done()


def _limit_units(budget: Budget) -> int:
    return int(budget.limit * MICRO_USD) if budget.unit == Unit.USD else int(budget.limit)


def _amount(budget: Budget, units: int) -> float:
    return float(Decimal(units) / MICRO_USD) if budget.unit == Unit.USD else float(units)


def _utc(now: float) -> datetime:
    return datetime.fromtimestamp(now, UTC)
