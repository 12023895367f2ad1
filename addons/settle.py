"""Settle: read what the provider answered — usage, model, text — streamed or not, and price it."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from decimal import Decimal

from mitmproxy import ctx, http
from mitmproxy.flow import Error

from addons._flow import contained, described, transit_of
from tollhouse.audit.record import Decision
from tollhouse.exchange import Usage
from tollhouse.providers.base import ResponseSummary
from tollhouse.transit import Transit, clip

log = logging.getLogger("tollhouse.settle")

STREAM_TYPES = ("text/event-stream", "application/vnd.amazon.eventstream")


# mitmproxy's messages for a flow that ended on the client's side: nothing more reaches the client.
_CLIENT_GONE = ("client disconnected", "stream reset by client", Error.KILLED_MESSAGE.lower())


def status_seen(flow: http.HTTPFlow) -> int | None:
    """The status the client received for a failed flow: the response's, if its headers had gone
    out (a stream that broke later); 502 if the upstream failed before answering (mitmproxy then
    answers the client itself); None if the client left, or was cut off, before any answer."""
    if flow.response is not None:
        return flow.response.status_code
    return None if client_left(flow) else 502


def client_left(flow: http.HTTPFlow) -> bool:
    """The flow failed on the client's side: it closed, reset or was killed."""
    return (flow.error.msg if flow.error else "").lower().startswith(_CLIENT_GONE)


class Settle:
    @contained("settle")
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        transit = transit_of(flow)
        if transit is None or transit.refused or flow.response is None:
            return
        exchange, adapter = transit.exchange, transit.adapter
        content_type = flow.response.headers.get("content-type", "")
        streamed = content_type.startswith(STREAM_TYPES) or (
            exchange is not None and exchange.stream and flow.response.status_code < 400
        )
        if not streamed:
            return
        reader = adapter.stream_reader(exchange, content_type) if adapter and exchange else None
        transit.stream_reader = reader
        filters = transit.stream_filters

        def relay(chunk: bytes) -> Iterable[bytes] | bytes:
            # Called by mitmproxy for each chunk as it arrives, and with b"" once at the end.
            nonlocal reader
            end = chunk == b""
            transit.keep_stream_bytes(chunk)
            if reader is not None:
                try:
                    chunk = reader.close() if end else reader.feed(chunk)
                except Exception as exc:
                    log.error(
                        "stream reader failed (%s) for %s; relaying raw",
                        described(exc),
                        transit.record.id,
                    )
                    reader = transit.stream_reader = None
            for stream_filter in filters:
                chunk = stream_filter.feed(chunk) + (stream_filter.close() if end else b"")
            # Nothing to send yet (a held partial event) is no chunk at all: mitmproxy would
            # write an empty chunk to an HTTP/1.1 client, which ends a chunked body.
            return chunk or []

        flow.response.stream = relay

    @contained("settle")
    def response(self, flow: http.HTTPFlow) -> None:
        transit = transit_of(flow)
        if transit is None or flow.response is None:
            return
        record = transit.record
        record.status = flow.response.status_code
        if transit.refused:
            record.response_body = clip(flow.response.get_text(strict=False) or "")
            self._close_reservation(transit, None, None)
            return
        if flow.response.stream:
            record.response_body = clip(bytes(transit.stream_bytes).decode("utf-8", "replace"))
            summary = transit.stream_reader.summary if transit.stream_reader else None
        else:
            body = flow.response.get_content(strict=False) or b""
            record.response_body = clip(body.decode("utf-8", "replace")) if body else None
            headers = {k.lower(): v for k, v in flow.response.headers.items()}
            summary = self._summarize(transit, body, headers)
        self._charge(transit, summary)

    @contained("settle")
    def error(self, flow: http.HTTPFlow) -> None:
        transit = transit_of(flow)
        if transit is None:
            return
        record = transit.record
        reader = transit.stream_reader
        if reader is not None and reader.finished and client_left(flow):
            # The client had the whole answer, stop event and usage included, and then closed
            # (litellm does, on Anthropic streams): a delivered exchange, charged in full.
            record.status = status_seen(flow)
            record.response_body = clip(bytes(transit.stream_bytes).decode("utf-8", "replace"))
            transit.event("settle", "client_closed_after_end")
            self._charge(transit, reader.summary)
            return
        record.error = flow.error.msg if flow.error else "unknown error"
        record.status = status_seen(flow)
        if record.decision != Decision.BLOCK:
            record.decision = Decision.ERROR
        summary = None
        if reader is not None:
            # A broken stream is charged what the provider reported before it broke.
            record.response_body = clip(bytes(transit.stream_bytes).decode("utf-8", "replace"))
            summary = reader.summary
        self._charge(transit, summary)

    def _summarize(
        self, transit: Transit, body: bytes, headers: dict[str, str]
    ) -> ResponseSummary | None:
        if transit.adapter is None or transit.exchange is None or not body:
            return None
        try:
            return transit.adapter.summarize(transit.exchange, body, headers)
        except Exception as exc:
            log.warning(
                "could not read usage of exchange %s (%s)", transit.record.id, described(exc)
            )
            return None

    def _charge(self, transit: Transit, summary: ResponseSummary | None) -> None:
        """Record usage and cost, and settle the budget reservation with them."""
        record = transit.record
        usage = summary.usage if summary is not None else None
        cost = None
        if summary is not None:
            record.model_answered = summary.model
        if usage is not None:
            record.tokens_in, record.tokens_out = usage.input_tokens, usage.output_tokens
            cost = self._price(transit, summary.model if summary else None, usage)
            record.cost_usd = float(cost) if cost is not None else None
        self._close_reservation(transit, cost, usage)

    def _price(self, transit: Transit, answered: str | None, usage: Usage) -> Decimal | None:
        meter = ctx.master.addons.get("meter")
        if meter is None or meter.prices is None:
            return None
        record = transit.record
        # The answering model first: Azure's deployment names, for one, are not priceable.
        for model in dict.fromkeys((answered, record.model_sent, record.model_requested)):
            cost = meter.prices.cost(record.provider, model, usage)
            if cost is not None:
                return cost
        return None

    def _close_reservation(
        self, transit: Transit, cost: Decimal | None, usage: Usage | None
    ) -> None:
        reservation, transit.reservation = transit.reservation, None
        if reservation is None:
            return
        try:
            if usage is None:
                reservation.release()
            else:
                reservation.settle(cost, usage)
        except Exception as exc:
            log.error(
                "could not settle the budget of exchange %s (%s)", transit.record.id, described(exc)
            )
