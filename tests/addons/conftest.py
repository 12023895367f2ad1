"""Helpers for addon tests with mitmproxy's own test helpers (taddons, tflow)."""

from __future__ import annotations

import contextlib
import ssl

from mitmproxy import connection, tls
from mitmproxy.proxy import context
from mitmproxy.proxy.layers.tls import parse_client_hello
from mitmproxy.test import taddons, tflow


def client_hello(sni: str | None) -> tls.ClientHello:
    """A real ClientHello, produced by Python's TLS stack for ``sni``."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    with contextlib.suppress(ssl.SSLWantReadError):
        conn.do_handshake()
    hello = parse_client_hello(outgoing.read())
    assert hello is not None
    return hello


def hello_data(sni: str | None) -> tls.ClientHelloData:
    client = tflow.tclient_conn()
    client.peername = ("10.1.2.3", 50000)
    ctx = context.Context(client, taddons.context().options)
    ctx.server = connection.Server(address=(sni or "198.51.100.7", 443))
    return tls.ClientHelloData(ctx, client_hello(sni))
