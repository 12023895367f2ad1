"""Upstream: send a catalog host's traffic to another address (private endpoints, tests), with
TLS still verified against the original host name."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import certifi
from mitmproxy import ctx, exceptions
from mitmproxy.proxy import server_hooks

from addons._flow import contained
from tollhouse.upstreams import UpstreamMap, parse_upstreams

log = logging.getLogger("tollhouse.upstream")


class Upstream:
    def __init__(self) -> None:
        self.map = UpstreamMap({})

    def load(self, loader):
        loader.add_option(
            "tollhouse_upstream",
            Sequence[str],
            [],
            "Send a catalog host to another address: HOST=ADDR:PORT (* for every AI host).",
        )
        loader.add_option(
            "tollhouse_upstream_ca",
            str,
            "",
            "CA certificate (PEM) to trust, besides the system's, for upstream TLS.",
        )

    def configure(self, updated):
        if "tollhouse_upstream" in updated:
            try:
                self.map = parse_upstreams(ctx.options.tollhouse_upstream)
            except ValueError as exc:
                raise exceptions.OptionsError(str(exc)) from exc
        if "tollhouse_upstream_ca" in updated and ctx.options.tollhouse_upstream_ca:
            ca = Path(ctx.options.tollhouse_upstream_ca)
            if not ca.is_file():
                raise exceptions.OptionsError(f"tollhouse_upstream_ca: no such file: {ca}")
            # mitmproxy trusts one bundle: the public roots plus ours, so that overridden hosts
            # and real providers both verify. Upstream TLS is never unverified.
            bundle = Path(ctx.options.tollhouse_data) / "upstream-ca-bundle.pem"
            bundle.parent.mkdir(parents=True, exist_ok=True)
            bundle.write_text(Path(certifi.where()).read_text() + "\n" + ca.read_text())
            ctx.options.update(ssl_verify_upstream_trusted_ca=str(bundle))

    @contained("upstream")
    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        address = data.server.address
        if not address:
            return
        host = data.server.sni or address[0]
        if data.server.sni and data.server.sni.endswith("."):
            # `api.openai.com.` names the same host, but OpenSSL refuses a trailing dot in the name
            # it verifies; mitmproxy's TLS hook then fails and leaves the client waiting forever.
            data.server.sni = data.server.sni.rstrip(".") or None
        scope = ctx.master.addons.get("scope")
        entry = scope.catalog.match(host) if scope and scope.catalog else None
        target = self.map.target(host, is_ai_host=entry is not None and entry.kind == "api")
        if target is not None:
            # Keep the SNI (and so certificate verification) on the provider's name.
            data.server.sni = data.server.sni or host.rstrip(".")
            data.server.address = target
            log.debug("upstream %s -> %s:%s", host, *target)
