"""Settle: read what the provider answered — usage, model, text — streamed or not, and price it."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from mitmproxy import ctx, http

from addons._flow import transit_of
from tollhouse.audit.record import Decision
from tollhouse.providers.base import ResponseSummary
from tollhouse.transit import Transit, clip

log = logging.getLogger("tollhouse.settle")

STREAM_TYPES = ("text/event-stream", "application/vnd.amazon.eventstream")


class Settle:
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
                except Exception:
                    log.exception("stream reader failed for %s; relaying raw", transit.record.id)
                    reader = transit.stream_reader = None
            for stream_filter in filters:
                chunk = stream_filter.feed(chunk) + (stream_filter.close() if end else b"")
            return chunk

        flow.response.stream = relay

    def response(self, flow: http.HTTPFlow) -> None:
        transit = transit_of(flow)
        if transit is None or flow.response is None:
            return
        record = transit.record
        record.status = flow.response.status_code
        if transit.refused:
            record.response_body = clip(flow.response.get_text(strict=False) or "")
            return
        if flow.response.stream:
            record.response_body = clip(bytes(transit.stream_bytes).decode("utf-8", "replace"))
            summary = transit.stream_reader.summary if transit.stream_reader else None
        else:
            body = flow.response.get_content(strict=False) or b""
            record.response_body = clip(body.decode("utf-8", "replace")) if body else None
            headers = {k.lower(): v for k, v in flow.response.headers.items()}
            summary = self._summarize(transit, body, headers)
        if summary is not None:
            self._charge(transit, summary)

    def error(self, flow: http.HTTPFlow) -> None:
        transit = transit_of(flow)
        if transit is None:
            return
        record = transit.record
        record.error = flow.error.msg if flow.error else "unknown error"
        if record.decision != Decision.BLOCK:
            record.decision = Decision.ERROR
        if transit.stream_reader is not None:
            # A broken stream is charged what the provider reported before it broke.
            record.response_body = clip(bytes(transit.stream_bytes).decode("utf-8", "replace"))
            self._charge(transit, transit.stream_reader.summary)

    def _summarize(
        self, transit: Transit, body: bytes, headers: dict[str, str]
    ) -> ResponseSummary | None:
        if transit.adapter is None or transit.exchange is None or not body:
            return None
        try:
            return transit.adapter.summarize(transit.exchange, body, headers)
        except Exception:
            log.warning("could not read usage of exchange %s", transit.record.id, exc_info=True)
            return None

    def _charge(self, transit: Transit, summary: ResponseSummary) -> None:
        record = transit.record
        record.model_answered = summary.model
        if summary.usage is None:
            return
        record.tokens_in = summary.usage.input_tokens
        record.tokens_out = summary.usage.output_tokens
        meter = ctx.master.addons.get("meter")
        if meter is None or meter.prices is None:
            return
        # The answering model first: Azure's deployment names, for one, are not priceable.
        for model in dict.fromkeys((summary.model, record.model_sent, record.model_requested)):
            cost = meter.prices.cost(record.provider, model, summary.usage)
            if cost is not None:
                record.cost_usd = float(cost)
                return
