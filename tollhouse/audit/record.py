"""What the audit log stores for one exchange. Field names are column names: security teams write
queries against them, so renaming one is a breaking change (see README, "Audit schema")."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


def new_exchange_id() -> str:
    """A sortable-enough unique id for an exchange (UUID4 hex)."""
    return uuid.uuid4().hex


class Decision:
    """What the gateway did with an exchange."""

    ALLOW = "allow"  # forwarded (possibly changed)
    PASS = "pass"  # noqa: S105 - forwarded unparsed: an endpoint no adapter knows
    BLOCK = "block"  # answered by the gateway; ``reason`` says which stage and why
    ERROR = "error"  # the upstream or client connection failed


@dataclass
class ExchangeRecord:
    """One row of ``exchanges``. Addons fill it in as the flow passes; the audit addon enqueues it
    once when the flow ends."""

    id: str = field(default_factory=new_exchange_id)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime | None = None
    latency_ms: float | None = None
    client_addr: str | None = None
    user_id: str | None = None
    team: str | None = None
    app: str | None = None
    identity_source: str | None = None  # e.g. "basic+header": where who and app came from
    shadow: bool = False  # not attributed to a known identity, application and policy
    shadow_reason: str | None = None  # "code: detail; ..." (no-identity, no-app, unregistered-key)
    key_fingerprint: str | None = None  # keyed hash of the provider API key, never the key
    host: str | None = None
    method: str | None = None
    path: str | None = None
    provider: str | None = None
    operation: str | None = None
    model_requested: str | None = None
    model_sent: str | None = None
    model_answered: str | None = None
    stream: bool = False
    status: int | None = None
    tokens_in_estimated: int | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    cost_estimated_usd: float | None = None
    injection_score: float | None = None
    injection_verdict: str | None = None  # allow, flag or block; empty when not scanned
    dlp_actions: str | None = None  # e.g. "EMAIL_ADDRESS:redact=2,AWS_ACCESS_KEY:redact=1"
    decision: str = Decision.ALLOW
    reason: str | None = None
    error: str | None = None
    signed: bool = False
    request_body: str | None = None
    response_body: str | None = None

    def finish(self, ended_at: datetime | None = None) -> None:
        """Stamp the end time and latency."""
        self.ended_at = ended_at or datetime.now(UTC)
        self.latency_ms = (self.ended_at - self.started_at).total_seconds() * 1000.0

    def as_row(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS: tuple[str, ...] = tuple(ExchangeRecord.__dataclass_fields__)
