"""Restore: put the user's own values back where DLP redacted them with ``restore: true``, in what
the provider answered, so the user sees their data while the provider never did.

It runs after settle, so the audit log keeps the provider's (redacted) answer.
"""

from __future__ import annotations

import codecs
import json
import logging

from mitmproxy import http

from addons._flow import contained, transit_of
from tollhouse.dlp import Restorer
from tollhouse.dlp.restore import SseRestorer

log = logging.getLogger("tollhouse.restore")

# AWS event-stream frames carry lengths and CRCs: rewriting their payload would break them.
_OPAQUE_STREAMS = ("application/vnd.amazon.eventstream",)


def _json_restorer(restore_map: dict[str, str]) -> Restorer:
    # Placeholders sit inside JSON strings (bodies and SSE data): the originals go back escaped.
    return Restorer(restore_map, escape=lambda v: json.dumps(v, ensure_ascii=False)[1:-1])


class _StreamRestore:
    """A stream filter, UTF-8 safe across chunks, holding back only a partial placeholder.

    Server-sent events go through :class:`SseRestorer`, which also restores a placeholder the
    model wrote over several events; other streams (a streamed JSON array) through the plain
    :class:`Restorer` on the bytes.
    """

    def __init__(self, restorer: Restorer | SseRestorer) -> None:
        self._restorer = restorer
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, chunk: bytes) -> bytes:
        return self._restorer.feed(self._decoder.decode(chunk)).encode()

    def close(self) -> bytes:
        return (
            self._restorer.feed(self._decoder.decode(b"", final=True)) + self._restorer.flush()
        ).encode()


class Restore:
    @contained("restore")
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        transit = transit_of(flow)
        if transit is None or not transit.restore_map or flow.response is None:
            return
        if not flow.response.stream:
            return  # a whole body is restored in `response`
        if flow.response.headers.get("content-type", "").startswith(_OPAQUE_STREAMS):
            transit.event("restore", "skipped", reason="event-stream frames cannot be rewritten")
            return
        if flow.response.headers.get("content-type", "").startswith("text/event-stream"):
            restorer: Restorer | SseRestorer = SseRestorer(transit.restore_map)
        else:
            restorer = _json_restorer(transit.restore_map)
        transit.stream_filters.append(_StreamRestore(restorer))

    @contained("restore")
    def response(self, flow: http.HTTPFlow) -> None:
        transit = transit_of(flow)
        if transit is None or not transit.restore_map or flow.response is None:
            return
        if flow.response.stream or transit.refused:
            return
        text = flow.response.get_text(strict=False)
        if text:
            flow.response.text = _json_restorer(transit.restore_map).restore(text)
