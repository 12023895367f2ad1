"""What the pipeline knows about one exchange while it passes through the gateway.

The scope stage creates a :class:`Transit` for every request to a catalog host and the addons keep
it in ``flow.metadata``; each stage reads what earlier stages left and adds its own part. The audit
stage turns its record into one row when the flow ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from tollhouse.audit.record import ExchangeRecord
from tollhouse.catalog import HostEntry
from tollhouse.exchange import Exchange, Usage
from tollhouse.providers.base import Adapter, StreamReader

BODY_LIMIT = 256 * 1024  # characters of a request or response body kept in the audit log


def clip(text: str, limit: int = BODY_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, with a marker saying how much was left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... {len(text) - limit} more characters not kept]"


class Reservation(Protocol):
    """Budget held for an exchange before it is sent (the budget stage makes one). The settle
    stage calls exactly one of these when the exchange ends."""

    def settle(self, cost_usd: Decimal | None, usage: Usage | None) -> None:
        """Replace the reservation by the real cost (None: the provider reported no usage)."""
        ...

    def release(self) -> None:
        """Give the reservation back: nothing was delivered or charged."""
        ...


class StreamFilter(Protocol):
    """Rewrites a streamed response body on its way to the client (e.g. restoring redacted values).
    ``feed`` returns what may be sent now; ``close`` returns what it held back."""

    def feed(self, chunk: bytes) -> bytes: ...

    def close(self) -> bytes: ...


@dataclass
class Transit:
    """One exchange on its way through the pipeline."""

    entry: HostEntry
    record: ExchangeRecord
    adapter: Adapter | None = None
    exchange: Exchange | None = None
    stream_reader: StreamReader | None = None
    policy: str | None = None  # named policy bound to the caller by identity; None: default
    refused: bool = False  # the gateway answered; the request never went upstream
    body: bytes | None = None  # the request body, content-decoded and checked by the wire stage
    scanned_by: set[str] = field(default_factory=set)  # request stages that read the whole request
    # the path and headers the parse stage read, so that commit writes rewritten ones back
    envelope: tuple[str, list[tuple[str, str]]] | None = None
    recorded: bool = False  # the audit row has been submitted
    stream_bytes: bytearray = field(default_factory=bytearray)
    reservation: Reservation | None = None
    stream_filters: list[StreamFilter] = field(default_factory=list)
    restore_map: dict[str, str] = field(default_factory=dict)  # DLP placeholder -> original
    findings: list[dict[str, Any]] = field(default_factory=list)  # rows of the `findings` table
    events: list[dict[str, Any]] = field(default_factory=list)  # rows of the `events` table

    def event(self, stage: str, kind: str, **detail: Any) -> None:
        """Note what a stage did (a flag, a warning, a rewrite) for the audit `events` table."""
        self.events.append(
            {"exchange_id": self.record.id, "stage": stage, "kind": kind, "detail": detail}
        )

    def keep_stream_bytes(self, chunk: bytes, limit: int = BODY_LIMIT) -> None:
        """Keep the start of a streamed body for the audit log, up to ``limit`` bytes."""
        room = limit - len(self.stream_bytes)
        if room > 0:
            self.stream_bytes += chunk[:room]
