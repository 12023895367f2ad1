"""DLP: scan every outbound prompt for PII, secrets and internal identifiers, and redact, mask,
hash or block by policy. The audit log records what was found and done, never the value."""

from __future__ import annotations

import logging

from mitmproxy import http

from addons._flow import active, fail_closed, off_loop, refuse, reload_policy, text_size
from tollhouse.dlp import DlpScanner, TooLargeToScan, load_dlp_policy
from tollhouse.providers.base import Refusal
from tollhouse.scanproc import PROCESS_THRESHOLD, ScanProcess

log = logging.getLogger("tollhouse.dlp")


class Dlp:
    def __init__(self) -> None:
        self.scanner: DlpScanner | None = None
        self.process = ScanProcess(DlpScanner)  # huge requests, scanned beside the loop's GIL

    def load(self, loader):
        # presidio logs every recognizer it loads at INFO; the gateway's log is for exchanges.
        logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)

    def configure(self, updated):
        if "tollhouse_rules" not in updated:
            return
        self.scanner = reload_policy(
            self.scanner, lambda path: DlpScanner(load_dlp_policy(path)), "dlp.yaml", "DLP policy"
        )
        if problem := self.scanner.missing_hash_key():
            log.warning("%s", problem)
        self.process.use(self.scanner.policy)

    def done(self) -> None:
        self.process.close()

    @fail_closed("dlp")
    async def request(self, flow: http.HTTPFlow) -> None:
        transit = active(flow)
        if transit is None or transit.exchange is None or self.scanner is None:
            return
        exchange, record = transit.exchange, transit.record
        # A bound policy name is a profile across stages; without a section here, the default.
        policy = transit.policy if transit.policy in self.scanner.policy.policies else None
        try:
            if text_size(exchange) > PROCESS_THRESHOLD:
                result = await self.process.inspect(exchange, policy)
            else:
                result = await off_loop(exchange, self.scanner.inspect, exchange, policy)
        except TooLargeToScan as exc:
            refuse(flow, transit, 413, Refusal.INVALID_REQUEST, f"{exc}; it was not sent", "dlp")
            return
        for row in result.audit_rows():
            transit.findings.append({"exchange_id": record.id, **row})
        counts = result.action_counts()
        record.dlp_actions = ",".join(f"{k}={n}" for k, n in sorted(counts.items())) or None
        if result.blocked:
            refuse(flow, transit, 403, Refusal.PERMISSION, result.reason, "dlp")
            return
        if result.ner_skipped:  # too long for the name/place model: patterns only
            transit.event("dlp", "ner_skipped", locations=list(result.ner_skipped))
        if result.attachments != "pass":
            transit.event("dlp", "attachments", handling=result.attachments)
        transit.restore_map.update(result.restore_map)
        transit.scanned_by.add("dlp")
