"""Commit: write the exchange back into the request, once, after every stage has had its say.
It is also the last gate: a request to an AI host goes upstream only if it was read and every
scanning stage in the chain scanned it."""

from __future__ import annotations

import logging

from mitmproxy import ctx, http
from mitmproxy.http import Headers

from addons._flow import active, fail_closed, refuse
from addons.parse import WEBSOCKET
from tollhouse.providers.base import Refusal, SignedBodyError
from tollhouse.providers.envelope import apply_envelope
from tollhouse.transit import Transit, clip

log = logging.getLogger("tollhouse.commit")

SCANNERS = ("dlp", "injection")  # stages that must have read a request before it may leave


class Commit:
    @fail_closed("commit")
    def request(self, flow: http.HTTPFlow) -> None:
        transit = active(flow)
        if transit is None:
            return
        if missing := self._unscanned(transit, bool(flow.metadata.get(WEBSOCKET))):
            log.error("exchange %s reached commit unscanned by %s", transit.record.id, missing)
            message = "the gateway could not check this request; it was not sent"
            refuse(flow, transit, 502, Refusal.GATEWAY, message, "commit")
            return
        exchange, record = transit.exchange, transit.record
        if exchange is not None and transit.adapter is not None:
            if exchange.changed:
                try:
                    rendered = transit.adapter.render(exchange)
                except SignedBodyError:
                    refuse(
                        flow,
                        transit,
                        403,
                        Refusal.PERMISSION,
                        "policy requires changing this request, but its body is signed (SigV4) "
                        "and cannot be changed; it was not sent",
                        "commit",
                    )
                    return
                flow.request.content = rendered.body  # the wire stage already removed any encoding
                flow.request.path = rendered.path
                if transit.envelope is not None:
                    self._write_envelope(flow, transit)
            record.model_sent = exchange.model
            if exchange.stream and not exchange.signed:
                # Streamed bodies are read event by event as they pass; ask for them unencoded.
                # (Not when SigV4 signs the request: its signature may cover this header, and
                # event-stream frames are not compressed anyway.)
                flow.request.headers["accept-encoding"] = "identity"
        body = flow.request.get_content(strict=False) or b""
        record.request_body = clip(body.decode("utf-8", "replace")) if body else None

    @staticmethod
    def _unscanned(transit: Transit, flow_is_upgrade: bool) -> list[str]:
        """Scanning stages in the chain that have not read this request (deny by default)."""
        if not transit.entry.decrypt:
            return []
        if flow_is_upgrade and "websocket" in transit.scanned_by:
            return []  # an allowed upgrade: its query and headers were scanned by that stage
        if transit.exchange is None:
            return ["parse"]
        return [s for s in SCANNERS if ctx.master.addons.get(s) and s not in transit.scanned_by]

    @staticmethod
    def _write_envelope(flow: http.HTTPFlow, transit: Transit) -> None:
        assert transit.envelope is not None and transit.exchange is not None
        _, headers = transit.envelope
        envelope = apply_envelope(transit.exchange, flow.request.path, headers)
        if envelope is None:
            return
        flow.request.path = envelope.path
        flow.request.headers = Headers(
            [
                (k.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
                for k, v in envelope.headers
            ]
        )
