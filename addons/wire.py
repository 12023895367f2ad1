"""Wire: the request body decoded once, in full, and the exact bytes scanned are the bytes sent.

Runs right before parse. Refuses what two readers could read differently: request trailers, a
Transfer-Encoding beside a Content-Length, repeated framing headers, a body that is not fully
decodable or not in a Unicode charset (``tollhouse.wire``). A body sent with a Content-Encoding
is forwarded decoded, without the header, so the provider reads exactly what the gateway read.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from mitmproxy import http

from addons._flow import THREAD_THRESHOLD, active, fail_closed, refuse
from tollhouse.providers.base import Refusal, Request
from tollhouse.providers.bedrock import is_signed
from tollhouse.wire import BodyError, codings, decode_body

log = logging.getLogger("tollhouse.wire")


class Wire:
    def load(self, loader: Any) -> None:
        keep_http1_trailers()

    @fail_closed("wire")
    async def request(self, flow: http.HTTPFlow) -> None:
        transit = active(flow)
        if transit is None:
            return
        request = flow.request
        raw = request.raw_content or b""
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            framing(request)
            encoded = codings(headers.get("content-encoding", ""))
            if encoded and is_signed(Request(request.method, "", request.path, headers, b"")):
                # The signature covers the encoded bytes: the decoded body would be rejected
                # upstream, and the encoded one is not what the gateway scanned.
                raise BodyError("a signed (SigV4) request body cannot be content-encoded")
            if encoded or len(raw) > THREAD_THRESHOLD:
                # decompressing (up to MAX_DECODED) must not hold every other flow
                body = await asyncio.to_thread(decode_body, raw, headers)
            else:
                body = decode_body(raw, headers)
        except BodyError as exc:
            refuse(flow, transit, 400, Refusal.INVALID_REQUEST, f"{exc}; it was not sent", "wire")
            return
        if "content-encoding" in request.headers:
            # Forward what was scanned: re-encoding by the declared chain could differ from what
            # the client sent (mitmproxy cannot re-encode "gzip, gzip", nor tell raw deflate).
            del request.headers["content-encoding"]
            request.content = body  # sets Content-Length (unless chunked)
        transit.body = body


def framing(request: http.Request) -> None:
    """Refuse a request whose framing two HTTP readers could take differently, or that carries
    fields after its body (trailers) that the scanner never read."""
    if request.trailers:
        raise BodyError("request trailers are not accepted")
    headers = request.headers
    for name in ("content-length", "content-type", "transfer-encoding"):
        if len(headers.get_all(name)) > 1:
            raise BodyError(f"the {name} header is repeated")
    te = headers.get("transfer-encoding")
    if te is not None:
        if "content-length" in headers:
            raise BodyError("both transfer-encoding and content-length are set")
        if te.strip().lower() != "chunked" or request.http_version != "HTTP/1.1":
            raise BodyError("only a chunked transfer-encoding over HTTP/1.1 is accepted")
    length = headers.get("content-length")
    if length is not None and (
        not length.strip().isdigit() or int(length) != len(request.raw_content or b"")
    ):
        raise BodyError("the content-length does not match the body")


class _TrailerReader:
    """An h11 body reader that hands trailers to the request instead of to mitmproxy, whose
    HTTP/1 layer raises on them and leaves the client waiting (mitmproxy 12: "HTTP trailers are
    not implemented yet"). The request hook then sees ``request.trailers`` and refuses."""

    def __init__(self, reader: Any, connection: Any) -> None:
        self.reader, self.connection = reader, connection

    def __call__(self, buf: Any) -> Any:
        event = self.reader(buf)
        if isinstance(event, h11.EndOfMessage) and event.headers:
            fields = [(bytes(k), bytes(v)) for k, v in event.headers.raw_items()]
            self.connection.request.trailers = http.Headers(fields)
            return h11.EndOfMessage()
        return event

    def read_eof(self) -> Any:
        return self.reader.read_eof()


def keep_http1_trailers() -> None:
    """Route HTTP/1 request trailers to the flow (see :class:`_TrailerReader`). Done once."""
    try:
        from mitmproxy.proxy.layers.http._http1 import Http1Server
    except ImportError:  # pragma: no cover - a mitmproxy without this module
        log.warning("HTTP/1 request trailers cannot be refused by this mitmproxy version")
        return
    original = Http1Server.read_body
    if getattr(original, "tollhouse", False):
        return

    def read_body(self: Any, event: Any) -> Any:
        if not isinstance(self.body_reader, _TrailerReader):
            self.body_reader = _TrailerReader(self.body_reader, self)
        return original(self, event)

    read_body.tollhouse = True  # type: ignore[attr-defined]
    Http1Server.read_body = read_body  # type: ignore[method-assign]
