"""The shadow-AI picture, read back from the audit log (read-only): who uses which AI services,
how much, through which keys, outside any sanctioned application."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from tollhouse.audit.query import QueryError, open_readonly

_SPAN = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime | None:
    """``24h``, ``7d``, ``30m``, ``2w``, an ISO date or time (UTC unless it says), or ``all``
    (None). Raises ValueError with a message for a person."""
    text = text.strip()
    if text.lower() == "all":
        return None
    now = now or datetime.now(UTC)
    if m := _SPAN.match(text.lower()):
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            raise ValueError(
                f"--since {text!r}: expected e.g. 24h, 7d, 2w, 2025-06-01 or all"
            ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Caller:
    """One person or device (or, unattributed, one client address)."""

    who: str
    kind: str  # "user", "device" or "address" (nobody identified: the client's IP address)
    teams: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)  # providers and observed consumer apps
    apps: list[str] = field(default_factory=list)  # sanctioned applications used
    requests: int = 0
    shadow_requests: int = 0
    blocked: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    unsanctioned_keys: list[str] = field(default_factory=list)  # fingerprints only
    shadow_reasons: list[str] = field(default_factory=list)  # codes: no-app, unregistered-key...
    observed_connections: int = 0
    first_seen: datetime | None = None
    last_seen: datetime | None = None

    @property
    def sanctioned(self) -> bool:
        return self.requests > 0 and self.shadow_requests == 0 and self.observed_connections == 0


@dataclass(frozen=True)
class Observed:
    """Connections of one caller to one observed consumer app (never decrypted)."""

    who: str
    app: str | None
    sni: str | None
    connections: int
    bytes_up: int
    bytes_down: int
    duration_ms: float
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass
class ShadowReport:
    since: datetime | None
    callers: list[Caller]
    observed: list[Observed]


_EXCHANGES = """
SELECT coalesce(user_id, client_addr, 'unknown') AS who,
       CASE WHEN user_id IS NULL THEN 'address'
            WHEN identity_source LIKE 'network%' THEN 'device' ELSE 'user' END AS kind,
       list(DISTINCT team) FILTER (WHERE team IS NOT NULL) AS teams,
       list(DISTINCT provider) FILTER (WHERE provider IS NOT NULL) AS providers,
       list(DISTINCT app) FILTER (WHERE app IS NOT NULL AND NOT coalesce(shadow, false)) AS apps,
       count(*) AS requests,
       count(*) FILTER (WHERE shadow) AS shadow_requests,
       count(*) FILTER (WHERE decision = 'block') AS blocked,
       coalesce(sum(tokens_in), 0) + coalesce(sum(tokens_out), 0) AS tokens,
       coalesce(sum(cost_usd), 0) AS cost_usd,
       list(DISTINCT key_fingerprint) FILTER (
           WHERE key_fingerprint IS NOT NULL AND shadow_reason LIKE '%unregistered-key%'
       ) AS keys,
       list(DISTINCT shadow_reason) FILTER (WHERE shadow_reason IS NOT NULL) AS reasons,
       min(started_at) AS first_seen,
       max(started_at) AS last_seen
FROM exchanges
WHERE ? IS NULL OR started_at >= ?
GROUP BY ALL
"""

_CONNECTIONS = """
SELECT coalesce(user_id, client_addr, 'unknown') AS who,
       CASE WHEN user_id IS NULL THEN 'address'
            WHEN identity_source LIKE 'network%' THEN 'device' ELSE 'user' END AS kind,
       app, sni,
       list(DISTINCT team) FILTER (WHERE team IS NOT NULL) AS teams,
       count(*) AS connections,
       coalesce(sum(bytes_up), 0) AS bytes_up,
       coalesce(sum(bytes_down), 0) AS bytes_down,
       coalesce(sum(duration_ms), 0) AS duration_ms,
       min("at") AS first_seen,
       max("at") AS last_seen
FROM connections
WHERE ? IS NULL OR "at" >= ?
GROUP BY ALL
ORDER BY who, app, sni
"""


def shadow_report(data_dir: Path, since: datetime | None, *, wait: float = 5.0) -> ShadowReport:
    """Per caller: services, requests, tokens, cost, unsanctioned keys, first and last seen;
    and the observed consumer-app connections. Raises :class:`~tollhouse.audit.query.AuditError`."""
    con = open_readonly(data_dir, wait)
    try:
        exchanges = _rows(con, _EXCHANGES, since)
        connections = _rows(con, _CONNECTIONS, since)
    finally:
        con.close()
    callers: dict[str, Caller] = {}
    for r in exchanges:
        c = callers.setdefault(r["who"], Caller(r["who"], r["kind"]))
        c.teams = sorted(set(c.teams) | set(r["teams"] or []))
        c.services = sorted(set(c.services) | set(r["providers"] or []))
        c.apps = sorted(set(c.apps) | set(r["apps"] or []))
        c.requests += int(r["requests"])
        c.shadow_requests += int(r["shadow_requests"])
        c.blocked += int(r["blocked"])
        c.tokens += int(r["tokens"])
        c.cost_usd += float(r["cost_usd"])
        c.unsanctioned_keys = sorted(set(c.unsanctioned_keys) | set(r["keys"] or []))
        codes = {part.split(":", 1)[0].strip() for s in r["reasons"] or [] for part in s.split(";")}
        c.shadow_reasons = sorted(set(c.shadow_reasons) | codes)
        _seen(c, r["first_seen"], r["last_seen"])
    observed: list[Observed] = []
    for r in connections:
        c = callers.setdefault(r["who"], Caller(r["who"], r["kind"]))
        c.teams = sorted(set(c.teams) | set(r["teams"] or []))
        c.services = sorted(set(c.services) | {r["app"] or r["sni"] or "unknown"})
        c.observed_connections += int(r["connections"])
        _seen(c, r["first_seen"], r["last_seen"])
        observed.append(
            Observed(
                who=r["who"],
                app=r["app"],
                sni=r["sni"],
                connections=int(r["connections"]),
                bytes_up=int(r["bytes_up"]),
                bytes_down=int(r["bytes_down"]),
                duration_ms=float(r["duration_ms"]),
                first_seen=r["first_seen"],
                last_seen=r["last_seen"],
            )
        )
    ordered = sorted(callers.values(), key=lambda c: (-c.shadow_requests, -c.requests, c.who))
    return ShadowReport(since=since, callers=ordered, observed=observed)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, since: datetime | None) -> list[dict]:
    try:
        cur = con.execute(sql, [since, since])
        names = [d[0] for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    except duckdb.Error as exc:
        raise QueryError(str(exc).strip()) from None


def _seen(caller: Caller, first: Any, last: Any) -> None:
    if first is not None and (caller.first_seen is None or first < caller.first_seen):
        caller.first_seen = first
    if last is not None and (caller.last_seen is None or last > caller.last_seen):
        caller.last_seen = last
