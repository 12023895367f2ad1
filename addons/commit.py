"""Commit: write the exchange back into the request, once, after every stage has had its say."""

from __future__ import annotations

import logging

from mitmproxy import http

from addons._flow import active, refuse
from tollhouse.providers.base import Refusal, SignedBodyError
from tollhouse.transit import clip

log = logging.getLogger("tollhouse.commit")


class Commit:
    def request(self, flow: http.HTTPFlow) -> None:
        transit = active(flow)
        if transit is None:
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
                except Exception:
                    log.exception("render failed for exchange %s", record.id)
                    refuse(
                        flow,
                        transit,
                        502,
                        Refusal.GATEWAY,
                        "the gateway could not rewrite this request; it was not sent",
                        "commit",
                    )
                    return
                flow.request.content = rendered.body  # re-encoded with the client's encoding
                flow.request.path = rendered.path
            record.model_sent = exchange.model
            if exchange.stream and not exchange.signed:
                # Streamed bodies are read event by event as they pass; ask for them unencoded.
                # (Not when SigV4 signs the request: its signature may cover this header, and
                # event-stream frames are not compressed anyway.)
                flow.request.headers["accept-encoding"] = "identity"
        body = flow.request.get_content(strict=False) or b""
        record.request_body = clip(body.decode("utf-8", "replace")) if body else None
