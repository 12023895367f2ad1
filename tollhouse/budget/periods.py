"""Calendar periods (day, week, month) in a time zone: the window a budget's spend counts in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

PERIODS = ("day", "week", "month")


@dataclass(frozen=True, slots=True)
class Window:
    """One period of a budget: ``id`` names it in the state store (``2026-05``, ``2026-W20``,
    ``2026-05-14``); ``start`` and ``end`` are aware datetimes in the budget's zone."""

    period: str
    id: str
    start: datetime
    end: datetime


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    # Wall-clock midnight in the zone; zoneinfo picks the right offset on DST days.
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def window(period: str, tz: ZoneInfo, now: datetime) -> Window:
    """The ``period`` ("day", "week" from Monday, "month") that contains ``now``, in ``tz``."""
    local = now.astimezone(tz).date()
    if period == "day":
        first, after = local, local + timedelta(days=1)
        ident = first.isoformat()
    elif period == "week":
        first = local - timedelta(days=local.weekday())
        after = first + timedelta(days=7)
        year, week, _ = first.isocalendar()
        ident = f"{year}-W{week:02d}"
    elif period == "month":
        first = local.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
        ident = f"{first.year}-{first.month:02d}"
    else:
        raise ValueError(f"unknown period {period!r}; use one of {', '.join(PERIODS)}")
    return Window(period, ident, _midnight(first, tz), _midnight(after, tz))
