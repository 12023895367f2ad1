"""Parse: turn the request body into one normalized exchange, once, with the provider's adapter."""

from __future__ import annotations

import logging

from mitmproxy import http

from addons._flow import active, refuse
from tollhouse import providers
from tollhouse.audit.record import Decision
from tollhouse.exchange import Operation
from tollhouse.providers.base import ParseError, Refusal, Request

log = logging.getLogger("tollhouse.parse")


class Parse:
    def request(self, flow: http.HTTPFlow) -> None:
        transit = active(flow)
        if transit is None or transit.entry.api is None:
            return
        record = transit.record
        resolved = providers.resolve(transit.entry.api, flow.request.method, flow.request.path)
        if resolved is None:
            # An AI host, but an endpoint no adapter knows: recorded as unknown and passed.
            record.operation, record.decision = Operation.UNKNOWN, Decision.PASS
            return
        transit.adapter, record.operation = resolved
        try:
            body = flow.request.get_content(strict=True) or b""
        except ValueError:
            refuse(
                flow,
                transit,
                400,
                Refusal.INVALID_REQUEST,
                "the request body could not be decoded (content-encoding)",
                "parse",
            )
            return
        request = Request(
            method=flow.request.method,
            host=flow.request.pretty_host,
            path=flow.request.path,
            headers={k.lower(): v for k, v in flow.request.headers.items()},
            body=body,
        )
        try:
            exchange = transit.adapter.parse(transit.entry.name, request)
        except ParseError as exc:
            refuse(flow, transit, 400, Refusal.INVALID_REQUEST, f"invalid request: {exc}", "parse")
            return
        except Exception:
            # Fail closed: an exchange we cannot read is never forwarded unscanned.
            log.exception("parse failed for exchange %s", record.id)
            refuse(
                flow,
                transit,
                502,
                Refusal.GATEWAY,
                "the gateway could not read this request; it was not sent",
                "parse",
            )
            return
        transit.exchange = exchange
        record.operation = exchange.operation
        record.model_requested = exchange.model_requested
        record.stream = exchange.stream
        record.signed = exchange.signed
