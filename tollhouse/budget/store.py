"""Where spend and reservations live: the contract every state store keeps, and how to open one.

Amounts are whole *units*: micro-USD for USD budgets, tokens for token budgets, so that stores add
integers exactly (Redis scripts and SQLite alike). A store's one promise that matters: ``reserve``
checks and reserves every charge in one atomic step — all fit and all are held, or none is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

MICRO_USD = 1_000_000  # units per USD
HOLD_TTL = 3600.0
"""Seconds after which a reservation nobody settled (its gateway died) stops counting."""


@dataclass(frozen=True, slots=True)
class Charge:
    """One budget an exchange is charged against, in one period."""

    key: str  # resolved budget key, e.g. team:payments/month
    period: str  # window id, e.g. 2026-05
    rule: str  # the rule that made it, e.g. team:*/month (how `tollhouse budget` groups)
    limit: int  # units the reservation must fit under (the cap, or the downgrade point)
    amount: int  # units to reserve: the worst case
    warn: int  # units at which the budget warns
    keep_until: float  # epoch seconds after which the period's state may be dropped


@dataclass(frozen=True, slots=True)
class Admission:
    """What ``reserve`` decided. On success ``used`` holds, per charge, the units committed
    (spent + reserved, this reservation included) and ``first_warn`` whether this reservation
    is the first in the period to reach the warn mark. On failure ``failed`` is the index of
    the first charge that did not fit, with that budget's ``spent`` and ``reserved``."""

    ok: bool
    used: tuple[int, ...] = ()
    first_warn: tuple[bool, ...] = ()
    failed: int | None = None
    spent: int = 0
    reserved: int = 0


@dataclass(frozen=True, slots=True)
class State:
    """One budget in one period as the store holds it."""

    key: str
    period: str
    rule: str
    spent: int
    reserved: int


class BudgetStore(Protocol):
    """Spend and reservations. Methods block on I/O: call them from a worker thread."""

    def reserve(
        self, hold_id: str, charges: Sequence[Charge], now: float, expires: float
    ) -> Admission:
        """Atomically: if every charge fits (spent + reserved + amount <= limit, and the
        budget is not already full), hold every amount until ``expires``; otherwise hold none."""
        ...

    def settle(self, hold_id: str, charges: Sequence[Charge], actual: Sequence[int]) -> None:
        """Drop the hold and add ``actual`` units to spent (0 to release). Adds the spend even
        when the hold has expired: the provider billed it all the same."""
        ...

    def states(self, now: float) -> list[State]:
        """Every budget state the store keeps, reservations expired by ``now`` not counted."""
        ...

    def close(self) -> None: ...


def shown_url(url: str) -> str:
    """``url`` as messages and logs may show it: scheme, host and port, never a password (Redis)
    or a path, which for webhooks often is the token itself (``/hooks/T0/B0/secret``)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "(an unreadable URL)"
    if not host:
        return f"{parts.scheme}://{parts.path}" if parts.scheme == "unix" else "(a URL)"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}" + (f":{port}" if port else "")


class StateError(RuntimeError):
    """The state store cannot be opened or reached."""


def open_store(state: str, data: Path, *, read_only: bool = False) -> BudgetStore:
    """The store for ``state``: ``""``/``embedded`` (SQLite under ``data``) or ``redis://…``.
    ``read_only`` opens it for reading without touching what a running gateway holds.
    Raises StateError when it cannot be opened or reached."""
    if state in ("", "embedded"):
        from tollhouse.budget.sqlite_store import SqliteStore

        return SqliteStore(data / "budget.sqlite3", read_only=read_only)
    if state.startswith(("redis://", "rediss://", "unix://")):
        from tollhouse.budget.redis_store import RedisStore

        store = RedisStore(state)
        store.ping()  # fail now, with the URL in the message, not on the first request
        return store
    raise StateError(f"unknown state store {state!r}: use 'embedded' or redis://host:port/db")
