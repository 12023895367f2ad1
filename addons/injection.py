"""Injection: score user- and tool-supplied text for prompt injection; block or flag by policy."""

from __future__ import annotations

import logging

from mitmproxy import http

from addons._flow import (
    active,
    contained,
    fail_closed,
    off_loop,
    refuse,
    reload_policy,
    text_size,
    transit_of,
)
from tollhouse.exchange import Role
from tollhouse.injection import InjectionScanner, load_injection_policy
from tollhouse.injection.smuggle import strip_smuggled
from tollhouse.providers.base import Refusal
from tollhouse.scanproc import PROCESS_THRESHOLD, ScanProcess
from tollhouse.transit import Transit

log = logging.getLogger("tollhouse.injection")

HEADER = "x-tollhouse-injection"


class Injection:
    def __init__(self) -> None:
        self.scanner: InjectionScanner | None = None
        self.process = ScanProcess(InjectionScanner)  # huge requests, beside the loop's GIL

    def configure(self, updated):
        if "tollhouse_rules" not in updated:
            return
        self.scanner = reload_policy(
            self.scanner,
            lambda path: InjectionScanner(load_injection_policy(path)),
            "injection.yaml",
            "injection rules",
        )
        self.process.use(self.scanner.pack)

    def done(self) -> None:
        self.process.close()

    @fail_closed("injection")
    async def request(self, flow: http.HTTPFlow) -> None:
        transit = active(flow)
        if transit is None or transit.exchange is None or self.scanner is None:
            return
        exchange, record = transit.exchange, transit.record
        # A bound policy name is a profile across stages: where this stage has no section of
        # that name, its default applies.
        policy = transit.policy if transit.policy in self.scanner.pack.policies else None
        if text_size(exchange) > PROCESS_THRESHOLD:
            verdict = await self.process.check(exchange, policy)
        else:
            verdict = await off_loop(exchange, self.scanner.check, exchange, policy)
        transit.scanned_by.add("injection")
        record.injection_score = round(verdict.score, 4)
        record.injection_verdict = verdict.verdict
        if verdict.verdict != "block":
            self._strip_smuggled(transit)
        if verdict.verdict == "allow":
            return
        transit.event(
            "injection",
            verdict.verdict,
            score=record.injection_score,
            rules=verdict.rules,
            hits=[
                {"rule": h.rule, "role": h.role, "location": h.location, "via": h.via}
                for h in verdict.hits
            ],
        )
        if verdict.verdict == "block":
            refuse(flow, transit, 403, Refusal.PERMISSION, verdict.block_message(), "injection")
        else:
            flow.metadata[HEADER] = verdict.header_value()

    @staticmethod
    def _strip_smuggled(transit: Transit) -> None:
        """Invisible characters that can only smuggle instructions (tag characters, bidi
        overrides, zero-width characters inside words) never reach the model. The application's
        own system prompt is left as it is, and a signed body cannot be changed."""
        exchange = transit.exchange
        if exchange is None or exchange.signed:
            return
        removed = 0
        for i, segment in enumerate(exchange.segments):
            if segment.role != Role.SYSTEM:
                clean, count = strip_smuggled(segment.text)
                if count:
                    exchange.set_text(i, clean)
                    removed += count
        if removed:
            transit.event("injection", "stripped", invisible_characters=removed)

    @contained("injection")
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        # A flagged request passes; the client (and its operators) can see the mark.
        if flow.response is not None and transit_of(flow) and HEADER in flow.metadata:
            flow.response.headers[HEADER] = flow.metadata[HEADER]
