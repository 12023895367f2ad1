"""Audit: one row per exchange in the DuckDB audit log. Hooks only enqueue; a background thread
writes in batches, so the request path never waits on the database.

Every row passes one boundary on its way in (:class:`ScrubbingWriter`, which every stage reaches
as ``audit.writer``): the fields that carry client-supplied text (path, model names, reasons,
finding locations, event details) are scrubbed by the DLP engine first (see
:mod:`tollhouse.dlp.scrub`), so a key planted in a path or a JSON key is never stored."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mitmproxy import ctx, http

from addons._flow import contained, dlp_scanner, scrub_client_text, transit_of
from tollhouse.audit.record import Decision, new_exchange_id
from tollhouse.audit.writer import AuditWriter
from tollhouse.dlp import DlpScanner
from tollhouse.dlp.scrub import fingerprint, scrub, scrub_path

log = logging.getLogger("tollhouse.audit")


# Fields of each table that may hold client-supplied text. The rest are the gateway's own words
# (decisions, entity types, stage names), numbers, or identities the identity stage vouched for.
CLIENT_TEXT: dict[str, tuple[str, ...]] = {
    "exchanges": (
        "host",
        "path",
        "model_requested",
        "model_sent",
        "model_answered",
        "reason",
        "error",
        "shadow_reason",
    ),
    "findings": ("location",),
    "events": ("detail",),
    "connections": ("sni",),
}
# "stage: message" and "code: detail; code: detail": the leading words are the gateway's own and
# stay readable when there is no scanner and the rest becomes a fingerprint.
_CODE = re.compile(r"([a-z][a-z_-]*): ")
_CODED = ("reason", "shadow_reason")
_MAX_DEPTH = 16  # nesting kept of an event's detail; deeper values become fingerprints


class ScrubbingWriter:
    """The audit writer as the stages see it: rows are scrubbed, then queued."""

    def __init__(self, writer: AuditWriter) -> None:
        self.inner = writer

    def submit(self, table: str, row: Mapping[str, Any]) -> None:
        self.inner.submit(table, scrub_row(dlp_scanner(), table, row))

    def start(self) -> None:
        self.inner.start()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:  # counters, paths: the writer's own
        return getattr(self.inner, name)


def scrub_row(scanner: DlpScanner | None, table: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` with its client-text fields scrubbed. Never raises: a field that cannot
    be scrubbed becomes a fingerprint."""
    out = dict(row)
    for name in CLIENT_TEXT.get(table, ()):
        value = out.get(name)
        try:
            if name == "detail":
                out[name] = _scrub_detail(scanner, value, 0)
            elif isinstance(value, str):
                out[name] = _scrub_field(scanner, name, value)
        except Exception:
            out[name] = fingerprint(repr(value), "unscannable")
    if table == "exchanges" and out.get("decision") == Decision.BLOCK:
        # A refusal's body is the gateway's own message, which may quote what it refused.
        body = out.get("response_body")
        if isinstance(body, str):
            out["response_body"] = scrub(scanner, body)
    return out


def _scrub_field(scanner: DlpScanner | None, name: str, value: str) -> str:
    if name == "path":
        return scrub_path(scanner, value)
    if scanner is not None or name not in _CODED:
        return scrub(scanner, value)
    # No scanner: fingerprint each part's detail, keep its code ("parse: [unscanned:...]").
    parts = []
    for part in value.split("; "):
        m = _CODE.match(part)
        code = m.group(0) if m else ""
        parts.append(code + scrub(None, part[len(code) :]))
    return "; ".join(parts)


def _scrub_detail(scanner: DlpScanner | None, value: Any, depth: int) -> Any:
    """String values (and keys) of an event's detail, at any depth; numbers and flags stay."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth > _MAX_DEPTH:
        return fingerprint(repr(value), "unscannable")
    if isinstance(value, str):
        return scrub(scanner, value)
    if isinstance(value, Mapping):
        return {
            (k if depth == 0 else scrub(scanner, str(k))): _scrub_detail(scanner, v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub_detail(scanner, v, depth + 1) for v in value]
    return scrub(scanner, str(value))


class Audit:
    def __init__(self) -> None:
        self.writer: ScrubbingWriter | None = None

    def configure(self, updated):
        if "tollhouse_data" in updated:
            if self.writer is not None:
                self.writer.close()
            data = Path(ctx.options.tollhouse_data)
            self.writer = ScrubbingWriter(AuditWriter(data))
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

    @contained("audit")
    def response(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None:  # a websocket's row is written when it ends, frames counted
            self._record(flow)

    @contained("audit")
    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    @contained("audit")
    def error(self, flow: http.HTTPFlow) -> None:
        self._record(flow)

    @contained("audit")
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
            _printable(_scrubbed(record.model_sent or record.model_requested)),
            record.status,
            record.tokens_in,
            record.tokens_out,
            record.cost_usd,
            record.decision,
        )

    def done(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _scrubbed(value: str | None) -> str | None:
    return scrub_client_text(value) if value else value


def _printable(value: str | None) -> str | None:
    """A client-supplied value fit for one log line: control characters (a newline would start a
    forged line) are escaped, and the length is capped."""
    if value is None or (value.isprintable() and len(value) <= 200):
        return value
    escaped = value[:200].encode("unicode_escape", "backslashreplace").decode("ascii")
    return escaped + ("..." if len(value) > 200 else "")
