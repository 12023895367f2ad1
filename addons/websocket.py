"""Websocket: upgrades on AI hosts only where the catalog allows them (OpenAI and Azure Realtime,
Gemini Live), and every frame the client sends scanned like a request body.

The upgrade request is refused in the provider's error shape unless its path is listed under the
host's ``websocket:`` in rules/hosts.yaml; an allowed one is marked (``flow.metadata[FLAG]``,
``transit.scanned_by``) so the body stages leave it alone, and its query string and headers are
scanned here. Each client frame is then read as a JSON event (:mod:`tollhouse.realtime`), scanned
by the DLP and injection stages' engines, and forwarded rewritten; a frame they block is dropped
and the connection closed with a reason that names types only. Server frames pass (the output
filter is another stage's job). The connection's one audit row is completed at ``websocket_end``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mitmproxy import ctx, http
from mitmproxy.proxy import events
from mitmproxy.proxy.layer import Layer
from mitmproxy.proxy.layers.websocket import WebsocketLayer, WebSocketMessageInjected
from mitmproxy.websocket import WebSocketMessage
from wsproto.events import CloseConnection
from wsproto.frame_protocol import Opcode

from addons._flow import active, fail_closed, off_loop, refuse, transit_of
from tollhouse import realtime
from tollhouse.audit.record import Decision
from tollhouse.dlp import DlpError, TooLargeToScan
from tollhouse.exchange import Exchange, Role
from tollhouse.injection.smuggle import strip_smuggled
from tollhouse.providers.base import Refusal
from tollhouse.providers.envelope import apply_envelope, envelope_segments
from tollhouse.realtime import FrameRefused, Tally
from tollhouse.transit import Transit

log = logging.getLogger("tollhouse.websocket")

FLAG = "tollhouse.websocket"  # an allowed upgrade: request body stages skip the flow
TALLY = "tollhouse.websocket.tally"
CLOSING = "tollhouse.websocket.closing"  # the gateway is closing: every later frame is dropped
# Handshake headers the client library makes up (a random key, the version): not client text.
_HANDSHAKE = frozenset({"upgrade", "connection", "sec-websocket-key", "sec-websocket-version"})


class Websocket:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    @fail_closed("websocket")
    async def request(self, flow: http.HTTPFlow) -> None:
        transit = active(flow)
        if transit is None or transit.entry.api is None:
            return
        upgrade = ",".join(flow.request.headers.get_all("upgrade")).strip().lower()
        if not upgrade:
            return
        path = flow.request.path.split("?", 1)[0]
        if upgrade != "websocket" or not transit.entry.allows_websocket(path):
            # Any other upgrade (h2c, a websocket elsewhere) would end in a tunnel nobody reads.
            why = "this endpoint does not accept websocket or protocol upgrades"
            refuse(flow, transit, 403, Refusal.PERMISSION, why, "websocket")
            return
        if (
            flow.request.method != "GET"
            or flow.request.headers.get("sec-websocket-version", "").strip() != "13"
            or flow.request.raw_content
        ):
            # mitmproxy relays anything else that gets a 101 as raw, unread TCP.
            why = "a websocket handshake must be a GET with Sec-WebSocket-Version 13 and no body"
            refuse(flow, transit, 400, Refusal.INVALID_REQUEST, why, "websocket")
            return
        flow.metadata[FLAG] = True
        flow.metadata[TALLY] = Tally()
        transit.scanned_by.add("websocket")
        transit.record.operation = realtime.OPERATION
        await self._scan_envelope(flow, transit)

    async def _scan_envelope(self, flow: http.HTTPFlow, transit: Transit) -> None:
        """The upgrade's query string (``?model=``) and headers are read by the provider: scan
        and rewrite them like a request's (credentials excepted, see envelope_segments)."""
        headers = [(k, v) for k, v in flow.request.headers.items() if k.lower() not in _HANDSHAKE]
        exchange = Exchange(
            provider=transit.entry.name,
            api=transit.entry.api or "",
            operation=realtime.OPERATION,
            path=flow.request.path,
            segments=envelope_segments(flow.request.path, headers),
        )
        try:
            blocked = await self._scan(transit, exchange, _tally(flow))
        except Exception as exc:
            log.error("websocket handshake scan failed for %s: %s", transit.record.id, _why(exc))
            why = "the gateway could not scan this request; it was not sent"
            refuse(flow, transit, 502, Refusal.GATEWAY, why, "websocket")
            return
        if blocked:
            _finish(transit, _tally(flow))  # no websocket_end will come: findings now
            refuse(flow, transit, 403, Refusal.PERMISSION, blocked, "websocket")
            return
        envelope = apply_envelope(exchange, flow.request.path, headers)
        if envelope is not None:
            flow.request.path = envelope.path
            for name, value in envelope.headers:
                flow.request.headers[name] = value

    def response(self, flow: http.HTTPFlow) -> None:
        try:
            self._upgraded(flow)
        except Exception as exc:  # fail closed: no upgrade we have not checked
            log.error("websocket upgrade check failed: %s", type(exc).__name__)
            if flow.killable:
                flow.kill()

    def _upgraded(self, flow: http.HTTPFlow) -> None:
        transit = transit_of(flow)
        if transit is None or flow.response is None or flow.response.status_code != 101:
            return
        if not flow.metadata.get(FLAG) or flow.websocket is None:
            # A switch to a protocol mitmproxy would relay unread: never on an AI host.
            log.warning("exchange %s: upstream switched protocols unasked; cut", transit.record.id)
            transit.record.decision = Decision.BLOCK
            transit.record.reason = "websocket: the upstream switched to an unreadable protocol"
            flow.kill()
            return
        transit.record.operation = realtime.OPERATION
        if transit.record.decision != Decision.BLOCK:
            transit.record.decision = Decision.ALLOW

    async def websocket_message(self, flow: http.HTTPFlow) -> None:
        try:
            await self._message(flow)
        except Exception as exc:  # fail closed: mitmproxy would log it and relay the frame
            log.error("websocket stage failed: %s", type(exc).__name__)
            if flow.websocket is not None and flow.websocket.messages:
                flow.websocket.messages[-1].drop()
                flow.metadata[CLOSING] = True
                self._close(flow, realtime.INTERNAL_ERROR, "the gateway failed on this frame")

    async def _message(self, flow: http.HTTPFlow) -> None:
        transit = transit_of(flow)
        if transit is None or flow.websocket is None:
            return
        message = flow.websocket.messages[-1]
        tally = _tally(flow)
        if flow.metadata.get(CLOSING):
            message.drop()
            return
        if not message.from_client:
            tally.server_frames += 1
            return
        tally.client_frames += 1
        tally.bytes_in += len(message.content)
        try:
            await self._frame(flow, transit, tally, message)
        except FrameRefused as exc:
            self._refuse_frame(flow, transit, tally, message, exc.code, exc.message)
        except Exception as exc:  # fail closed: a frame we could not scan never leaves
            log.error("websocket frame scan failed for %s: %s", transit.record.id, _why(exc))
            why = "the gateway could not scan this frame"
            self._refuse_frame(flow, transit, tally, message, realtime.INTERNAL_ERROR, why)

    async def _frame(
        self, flow: http.HTTPFlow, transit: Transit, tally: Tally, message: WebSocketMessage
    ) -> None:
        payload: str | bytes = message.text if message.is_text else message.content
        if not message.is_text and message.content.lstrip()[:1] != b"{":
            # Binary that is not a JSON event (raw audio, protobuf): nothing the scanners read.
            if _unscannable(transit, flow) != "pass":
                raise FrameRefused(
                    realtime.UNSUPPORTED_DATA, "binary frames are not allowed on this endpoint"
                )
            tally.unscanned_passed += 1
            return
        entry = transit.entry
        event = realtime.read_event(payload)
        path = flow.request.path.split("?", 1)[0]
        exchange = realtime.event_exchange(entry.name, entry.api or "", path, event)
        tally.media += len(exchange.attachments)
        if blocked := await self._scan(transit, exchange, tally):
            raise FrameRefused(realtime.POLICY_VIOLATION, blocked)
        tally.scanned += 1
        new = realtime.rewritten(exchange)
        if new is not None:
            if message.is_text:
                message.text = new
            else:
                message.content = new.encode("utf-8")
            tally.rewritten += 1

    async def _scan(self, transit: Transit, exchange: Exchange, tally: Tally) -> str | None:
        """DLP and injection on ``exchange``, as their stages would: segments rewritten in
        place; the reason when one blocks (entity types or rule ids, never text), else None."""
        dlp = ctx.master.addons.get("dlp")
        scanner = getattr(dlp, "scanner", None)
        if scanner is not None:
            named = transit.policy if transit.policy in scanner.policy.policies else None
            try:
                result = await off_loop(exchange, scanner.inspect, exchange, named)
            except TooLargeToScan as exc:
                raise FrameRefused(realtime.TOO_BIG, str(exc)) from None
            tally.add_findings(result.audit_rows())
            if result.blocked:
                return result.reason
        injection = ctx.master.addons.get("injection")
        checker = getattr(injection, "scanner", None)
        if checker is not None:
            named = transit.policy if transit.policy in checker.pack.policies else None
            verdict = await off_loop(exchange, checker.check, exchange, named)
            tally.add_injection(round(verdict.score, 4), verdict.verdict)
            if verdict.verdict == "block":
                return verdict.block_message()
            for i, segment in enumerate(exchange.segments):
                if segment.role != Role.SYSTEM:
                    clean, count = strip_smuggled(segment.text)
                    if count:
                        exchange.set_text(i, clean)
        return None

    def _refuse_frame(
        self,
        flow: http.HTTPFlow,
        transit: Transit,
        tally: Tally,
        message: WebSocketMessage,
        code: int,
        reason: str,
    ) -> None:
        """Drop the frame and close both sides: a connection that lost a frame is out of step
        with the provider, and the client must hear why rather than wait for an answer."""
        message.drop()
        flow.metadata[CLOSING] = True
        tally.refused += 1
        tally.closed_by_gateway = reason
        record = transit.record
        record.decision = Decision.BLOCK
        record.reason = f"websocket: {reason}"
        transit.event("websocket", "refused", code=code, frame=tally.client_frames, reason=reason)
        log.info(
            "exchange %s websocket closed at frame %s: %s", record.id, tally.client_frames, reason
        )
        self._close(flow, code, realtime.close_reason(reason))

    def _close(self, flow: http.HTTPFlow, code: int, reason: str) -> None:
        """Close the websocket with ``code`` and ``reason`` to the client and the provider.

        mitmproxy has no call for this. Its websocket layer reads wsproto's event queue before
        new bytes (its own message injection works that way): a close queued on the client side
        is relayed to both ends, as a client's close would be, as soon as the layer handles its
        next event, which an empty injected message provides (dropped above, as ``CLOSING``).
        Should the layer not be found (another mitmproxy), the client connection is closed.
        """
        server = ctx.master.addons.get("proxyserver")
        handler = server.connections.get(flow.client_conn.id) if server else None
        if handler is None:
            return  # the connection is already gone
        layer = _websocket_layer(handler.layer, flow)
        if layer is not None:
            layer.client_ws._events.append(CloseConnection(code=code, reason=reason))
            server.inject_event(
                WebSocketMessageInjected(flow, WebSocketMessage(Opcode.TEXT, True, b""))
            )
            return
        log.warning("websocket layer not found; closing the client connection instead")
        task = asyncio.get_running_loop().create_task(
            handler.server_event(events.ConnectionClosed(flow.client_conn))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        """Complete the connection's audit row (the audit stage writes it next)."""
        transit = transit_of(flow)
        tally = flow.metadata.get(TALLY)
        if transit is None or tally is None or flow.websocket is None:
            return
        _finish(transit, tally)
        if tally.closed_by_gateway:
            closed_by = "gateway"
        else:
            closed_by = "client" if flow.websocket.closed_by_client else "server"
        transit.event(
            "websocket",
            "closed",
            closed_by=closed_by,
            close_code=flow.websocket.close_code,
            **tally.counts(),
        )
        if transit.record.decision == Decision.PASS:
            transit.record.decision = Decision.ALLOW


def _finish(transit: Transit, tally: Tally) -> None:
    """What the frames' scans found, into the connection's audit row and findings."""
    record = transit.record
    record.operation = realtime.OPERATION
    record.dlp_actions = tally.dlp_summary()
    record.injection_score = tally.injection_score
    record.injection_verdict = tally.injection_verdict
    for row in tally.finding_rows():
        transit.findings.append({"exchange_id": record.id, **row})


def _tally(flow: http.HTTPFlow) -> Tally:
    tally = flow.metadata.get(TALLY)
    if tally is None:  # a websocket the request hook never allowed: count it anyway
        tally = flow.metadata[TALLY] = Tally()
    return tally


def _unscannable(transit: Transit, flow: http.HTTPFlow) -> str:
    """``block`` or ``pass`` for an unreadable frame, from hosts.yaml's ``unscannable``."""
    scope = ctx.master.addons.get("scope")
    catalog = getattr(scope, "catalog", None)
    if catalog is None or not hasattr(catalog, "unscannable"):
        return "block"
    return str(catalog.unscannable(transit.entry, flow.request.path.split("?", 1)[0]))


def _websocket_layer(root: Layer, flow: http.HTTPFlow) -> WebsocketLayer | None:
    """The websocket layer relaying ``flow`` inside a connection's layer tree."""
    todo: list[Any] = [root]
    seen: set[int] = set()
    while todo:
        layer = todo.pop()
        if id(layer) in seen:
            continue
        seen.add(id(layer))
        if isinstance(layer, WebsocketLayer) and layer.flow is flow:
            return layer
        todo.extend(getattr(layer, name, None) for name in ("layer", "child_layer"))
        # A proxy mode layer hands its events to its child through its bound handler only.
        todo.append(getattr(getattr(layer, "_handle_event", None), "__self__", None))
        streams = getattr(layer, "streams", None)
        if isinstance(streams, dict):
            todo.extend(streams.values())
        todo = [x for x in todo if isinstance(x, Layer)]
    return None


def _why(exc: Exception) -> str:
    """An exception for the log: a FrameRefused/DlpError message names no client text; any other
    is named by its type only."""
    return str(exc) if isinstance(exc, FrameRefused | DlpError) else type(exc).__name__
