"""Parse: turn the whole request into one normalized exchange, once. Deny by default: whatever
the endpoint, every string the provider will read becomes a segment the later stages scan."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

from mitmproxy import ctx, http

from addons._flow import active, fail_closed, refuse
from tollhouse import providers
from tollhouse.audit.record import Decision
from tollhouse.exchange import Exchange
from tollhouse.providers.base import ParseError, Refusal, Request
from tollhouse.providers.envelope import AmbiguousPath, envelope_segments, normalize_path
from tollhouse.providers.generic import GenericAdapter
from tollhouse.providers.walk import cover
from tollhouse.tokens import TokenCounter
from tollhouse.transit import Transit

log = logging.getLogger("tollhouse.parse")
WEBSOCKET = "tollhouse.websocket"  # set by the websocket stage on an upgrade it allowed


class Parse:
    def __init__(self) -> None:
        self.counter: TokenCounter | None = None  # reads token-id prompts as text

    def configure(self, updated):
        if "tollhouse_data" in updated:
            self.counter = TokenCounter(Path(ctx.options.tollhouse_data) / "cache" / "tiktoken")

    @fail_closed("parse")
    def request(self, flow: http.HTTPFlow) -> None:
        transit = active(flow)
        if transit is None or not transit.entry.decrypt or flow.metadata.get(WEBSOCKET):
            return  # an allowed websocket upgrade: the websocket stage read and scanned it
        try:
            path = normalize_path(flow.request.path)
        except AmbiguousPath as exc:
            refuse(flow, transit, 400, Refusal.INVALID_REQUEST, f"ambiguous path: {exc}", "parse")
            return
        body = transit.body
        if body is None:  # the wire stage is switched off: mitmproxy's strict decoding
            try:
                body = flow.request.get_content(strict=True) or b""
            except ValueError:
                message = "the request body could not be decoded (content-encoding)"
                refuse(flow, transit, 400, Refusal.INVALID_REQUEST, message, "parse")
                return
        headers = list(flow.request.headers.items(multi=True))
        request = Request(
            method=flow.request.method,
            host=flow.request.pretty_host,
            path=flow.request.path,
            headers={k.lower(): v for k, v in headers},
            body=body,
        )
        try:
            exchange = self._parse(transit, request)
        except ParseError as exc:
            refuse(flow, transit, 400, Refusal.INVALID_REQUEST, f"invalid request: {exc}", "parse")
            return
        # The path, query string and headers are read too: a provider stores them as well.
        # A consumer app in `inspect` is a browser session: its cookies are its credentials.
        session = frozenset({"cookie"}) if transit.entry.kind == "consumer" else frozenset()
        exchange.segments.extend(envelope_segments(flow.request.path, headers, session))
        transit.envelope = (flow.request.path, headers)
        transit.exchange = exchange
        record = transit.record
        record.operation = exchange.operation
        record.model_requested = exchange.model_requested
        record.stream = exchange.stream
        record.signed = exchange.signed
        if exchange.unreadable:
            self._unreadable(flow, transit, exchange, path)

    def _parse(self, transit: Transit, request: Request) -> Exchange:
        """The exchange by the endpoint's own adapter, with every string it does not read added;
        an endpoint no adapter knows is read by the generic path."""
        api = transit.entry.api or "openai"  # consumer apps in `inspect`: OpenAI-shaped errors
        resolved = providers.resolve(api, request.method, request.path)
        if resolved is None:
            family = providers.ADAPTERS.get(api, providers.ADAPTERS["openai"])
            transit.adapter = GenericAdapter(family, self._decoder(None))
            return transit.adapter.parse(transit.entry.name, request)
        transit.adapter, transit.record.operation = resolved
        exchange = transit.adapter.parse(transit.entry.name, request)
        cover(exchange, self._decoder(exchange.model))
        return exchange

    def _decoder(self, model: str | None):
        return partial(self.counter.decode, model=model) if self.counter else None

    def _unreadable(self, flow: http.HTTPFlow, transit: Transit, exchange: Exchange, path: str):
        scope = ctx.master.addons.get("scope")
        action = scope.catalog.unscannable(transit.entry, path) if scope else "block"
        what = "; ".join(exchange.unreadable)
        transit.event("parse", f"unscannable_{action}", parts=exchange.unreadable)
        if action == "block":
            message = (
                f"this request carries content the gateway cannot scan ({what}); it was not sent"
            )
            refuse(flow, transit, 415, Refusal.PERMISSION, message, "parse")
        else:  # forwarded with parts unread: the audit says so
            transit.record.decision = Decision.PASS
            transit.record.reason = f"parse: passed unscanned by policy: {what}"
