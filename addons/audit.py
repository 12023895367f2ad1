"""Audit: one row per exchange in the DuckDB audit log. Hooks only enqueue; a background thread
writes in batches, so the request path never waits on the database."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from mitmproxy import ctx, http

from addons._flow import transit_of
from tollhouse.audit.record import new_exchange_id
from tollhouse.audit.writer import AuditWriter

log = logging.getLogger("tollhouse.audit")


class Audit:
    def __init__(self) -> None:
        self.writer: AuditWriter | None = None

    def configure(self, updated):
        if "tollhouse_data" in updated:
            if self.writer is not None:
                self.writer.close()
            data = Path(ctx.options.tollhouse_data)
            self.writer = AuditWriter(data)
            self.writer.start()

    def observe_connection(
        self, *, client_addr: str | None, sni: str | None, handling: str
    ) -> None:
        """Record a connection that is seen but never decrypted (consumer apps in observe mode)."""
        if self.writer is not None:
            self.writer.submit(
                "connections",
                {
                    "id": new_exchange_id(),
                    "at": datetime.now(UTC),
                    "client_addr": client_addr,
                    "sni": sni,
                    "handling": handling,
                },
            )

    def response(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    def http_connect_error(self, flow: http.HTTPFlow) -> None:
        self._record(flow)  # a CONNECT to an AI host that failed upstream (see scope)

    def _record(self, flow: http.HTTPFlow) -> None:
        transit = transit_of(flow)
        if transit is None or transit.recorded or self.writer is None:
            return
        transit.recorded = True
        record = transit.record
        record.finish()
        self.writer.submit("exchanges", record.as_row())
        for finding in transit.findings:
            self.writer.submit("findings", finding)
        for event in transit.events:
            self.writer.submit("events", {"at": record.ended_at, **event})
        log.info(
            "exchange %s %s %s %s -> %s tokens=%s/%s cost=%s %s",
            record.id,
            record.provider,
            record.operation,
            _printable(record.model_sent or record.model_requested),  # the client's text
            record.status,
            record.tokens_in,
            record.tokens_out,
            record.cost_usd,
            record.decision,
        )

    def done(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _printable(value: str | None) -> str | None:
    """A client-supplied value fit for one log line: control characters (a newline would start a
    forged line) are escaped, and the length is capped."""
    if value is None or (value.isprintable() and len(value) <= 200):
        return value
    escaped = value[:200].encode("unicode_escape", "backslashreplace").decode("ascii")
    return escaped + ("..." if len(value) > 200 else "")
