"""Observe: consumer AI apps set to ``observe`` are measured, never decrypted.

For a TLS connection whose ClientHello names an observed host (or, while the ClientHello is still
incomplete, whose CONNECT target is one), the next layer is a raw TCP relay instead of TLS
interception: the client's TLS session reaches the real server end to end, with the server's own
certificate, and the relay counts bytes each way. One ``connections`` row is written when the
connection ends: time, client, SNI, app, who (from the CONNECT's proxy credentials or the client's
device), bytes up and down, duration. No payload is kept.

This addon's ``next_layer`` must run before mitmproxy's own (which decides on TLS at once):
script addons do, because mitmproxy's script loader precedes its next-layer addon.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from mitmproxy import ctx, tcp
from mitmproxy.net.tls import starts_like_tls_record
from mitmproxy.proxy import layer
from mitmproxy.proxy.layers import TCPLayer, modes
from mitmproxy.proxy.layers.tls import parse_client_hello

from addons._flow import contained
from tollhouse.audit.record import new_exchange_id
from tollhouse.catalog import Handling

log = logging.getLogger("tollhouse.observe")

KEY = "tollhouse_observe"


@dataclass
class Observation:
    """What is kept about one observed connection: names and counts, never content."""

    app: str
    sni: str | None
    started: float
    bytes_up: int = 0
    bytes_down: int = 0


class Observe:
    @contained("observe")
    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        if nextlayer.layer is not None:
            return
        context = nextlayer.context
        if context.client.transport_protocol != "tcp" or _proxy_front(context.layers):
            return
        data = nextlayer.data_client()
        if not starts_like_tls_record(data):
            return
        try:
            hello = parse_client_hello(data)
        except ValueError:
            return  # not a ClientHello we can read: mitmproxy's usual handling
        address = context.server.address
        host = (hello.sni if hello else None) or (address[0] if address else None)
        scope = ctx.master.addons.get("scope")
        entry = scope.catalog.match(host) if scope is not None and scope.catalog else None
        if entry is None or entry.handling != Handling.OBSERVE:
            return
        relay = TCPLayer(context, ignore=False)
        assert relay.flow is not None
        relay.flow.metadata[KEY] = Observation(
            app=entry.name, sni=hello.sni if hello else host, started=time.time()
        )
        nextlayer.layer = relay

    @contained("observe")
    def tcp_message(self, flow: tcp.TCPFlow) -> None:
        observation: Observation | None = flow.metadata.get(KEY)
        if observation is None:
            return
        message = flow.messages[-1]
        if message.from_client:
            observation.bytes_up += len(message.content)
        else:
            observation.bytes_down += len(message.content)
        # Only counts are kept: drop what was relayed, so a long connection costs no memory.
        del flow.messages[:-1]

    @contained("observe")
    def tcp_end(self, flow: tcp.TCPFlow) -> None:
        self._record(flow)

    @contained("observe")
    def tcp_error(self, flow: tcp.TCPFlow) -> None:
        self._record(flow)

    def _record(self, flow: tcp.TCPFlow) -> None:
        observation: Observation | None = flow.metadata.pop(KEY, None)
        audit = ctx.master.addons.get("audit")
        if observation is None or audit is None or audit.writer is None:
            return
        identify = ctx.master.addons.get("identify")
        user, team, source = identify.who(flow.client_conn) if identify else (None, None, None)
        peer = flow.client_conn.peername
        row = {
            "id": new_exchange_id(),
            "at": datetime.fromtimestamp(observation.started, UTC),
            "client_addr": peer[0] if peer else None,
            "sni": observation.sni,
            "handling": Handling.OBSERVE,
            "bytes_up": observation.bytes_up,
            "bytes_down": observation.bytes_down,
            "duration_ms": (time.time() - observation.started) * 1000.0,
            "app": observation.app,
            "user_id": user,
            "team": team,
            "identity_source": source,
        }
        audit.writer.submit("connections", row)
        log.info(
            "observed %s (%s) from %s: %d bytes up, %d down, %.0f ms",
            observation.app,
            observation.sni,
            user or row["client_addr"],
            observation.bytes_up,
            observation.bytes_down,
            row["duration_ms"],
        )


def _proxy_front(stack: list[layer.Layer]) -> bool:
    """The proxy's own front door (an explicit proxy's first bytes), not a tunnel's content."""
    return len(stack) == 1 and isinstance(stack[0], modes.HttpProxy | modes.HttpUpstreamProxy)
