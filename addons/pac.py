"""Pac: the gateway serves its proxy auto-config at ``/proxy.pac`` and ``/wpad.dat``.

A browser fetches a PAC file directly, not through a proxy, so the request reaches the gateway as
a plain HTTP request addressed to the gateway itself (mitmproxy would otherwise try to forward it
to its own address and fail). The file is written from the scope stage's catalog at each fetch,
so it follows every reload of hosts.yaml. It is answered before the identify stage: browsers
fetch PAC files without proxy credentials.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from mitmproxy import ctx, exceptions, http
from mitmproxy.proxy.mode_specs import RegularMode, UpstreamMode

from addons._flow import described, fail_closed, transit_of
from tollhouse.catalog import Catalog
from tollhouse.pac import CONTENT_TYPE, pac_file, proxy_address

PATHS = frozenset({"/proxy.pac", "/wpad.dat"})
LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
log = logging.getLogger("tollhouse.pac")


class Pac:
    def __init__(self) -> None:
        self.proxies: tuple[str, ...] = ()
        self._cache: tuple[Catalog, tuple[str, ...], str] | None = None

    def load(self, loader):
        loader.add_option(
            "tollhouse_pac_proxy",
            Sequence[str],
            [],
            "Gateway addresses (HOST:PORT, first preferred, the others fallbacks) named by the "
            "served proxy.pac; by default the address the client reached.",
        )

    def configure(self, updated):
        if "tollhouse_pac_proxy" in updated:
            try:
                self.proxies = tuple(proxy_address(p) for p in ctx.options.tollhouse_pac_proxy)
            except ValueError as exc:
                raise exceptions.OptionsError(f"tollhouse_pac_proxy: {exc}") from None

    @fail_closed("pac")
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        # A flow with a transit is an AI exchange (should a reordered chain put scope first):
        # never a PAC fetch.
        if flow.response or flow.error or not flow.live or transit_of(flow):
            return
        if not addressed_to_gateway(flow):
            return
        try:
            flow.response = self._answer(flow)
        except Exception as exc:  # never forwarded: the gateway would connect to itself
            log.error("pac: the proxy auto-config could not be written (%s)", described(exc))
            flow.response = http.Response.make(
                503, b"proxy auto-config unavailable\n", {"content-type": "text/plain"}
            )

    def _answer(self, flow: http.HTTPFlow) -> http.Response:
        scope = ctx.master.addons.get("scope")
        catalog = getattr(scope, "catalog", None)
        if not isinstance(catalog, Catalog):
            raise LookupError("no host catalog: the scope stage is not loaded")
        proxies = self.proxies or (reached(flow),)
        cached = self._cache
        if cached is None or cached[0] is not catalog or cached[1] != proxies:
            cached = self._cache = (catalog, proxies, pac_file(catalog, proxies))
        # Short caching: browsers pick up a catalog change within minutes.
        headers = {"content-type": CONTENT_TYPE, "cache-control": "max-age=300"}
        return http.Response.make(200, cached[2].encode(), headers)


def addressed_to_gateway(flow: http.HTTPFlow) -> bool:
    """A plain-HTTP ``GET /proxy.pac`` or ``/wpad.dat`` sent to the gateway's own port in
    regular or upstream mode, naming the gateway by the address the client reached, a loopback
    name or a DNS name (the gateway cannot know every name that resolves to it). A request for
    another machine's address is forwarded as usual."""
    request, client = flow.request, flow.client_conn
    if request.method != "GET" or request.path.split("?", 1)[0] not in PATHS:
        return False
    if client.tls or request.scheme != "http" or client.sockname is None:
        return False
    if not isinstance(client.proxy_mode, RegularMode | UpstreamMode):
        return False  # transparent and reverse requests belong to the server they name
    own_host, own_port = client.sockname[0], client.sockname[1]
    if request.port != own_port:
        return False
    host = request.host.lower()
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return True  # a DNS name on the gateway's port
    own = ipaddress.ip_address(own_host.split("%", 1)[0])
    if isinstance(own, ipaddress.IPv6Address) and own.ipv4_mapped:  # a dual-stack listener
        own = own.ipv4_mapped
    return host in LOOPBACK or address == own


def reached(flow: http.HTTPFlow) -> str:
    """``HOST:PORT`` as the client reached the gateway: the name from its Host header when it
    is a well-formed host name, else the local address of its connection."""
    own_host, own_port = flow.client_conn.sockname[0], flow.client_conn.sockname[1]
    try:
        return proxy_address(f"{flow.request.host}:{own_port}")
    except ValueError:
        host = own_host.split("%", 1)[0]
        return f"[{host}]:{own_port}" if ":" in host else f"{host}:{own_port}"
