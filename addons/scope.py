"""Scope: decrypt only the hosts in the AI catalog; everything else passes through untouched."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from mitmproxy import ctx, http, tls

from addons._flow import KEY, contained, fail_closed, refuse, reload_policy, transit_of
from tollhouse.audit.record import Decision, ExchangeRecord
from tollhouse.catalog import Catalog, Handling, load_catalog
from tollhouse.exchange import Operation
from tollhouse.providers.base import Refusal
from tollhouse.transit import Transit

log = logging.getLogger("tollhouse.scope")


class Scope:
    def __init__(self) -> None:
        self.catalog: Catalog | None = None

    def load(self, loader):
        loader.add_option("tollhouse_rules", str, "rules", "Folder of Tollhouse policy files.")
        loader.add_option(
            "tollhouse_data", str, "data", "Folder of the audit log and gateway state."
        )

    def configure(self, updated):
        if "tollhouse_rules" in updated:
            self.catalog = reload_policy(self.catalog, load_catalog, "hosts.yaml", "host catalog")

    def running(self) -> None:
        # Under plain `mitmdump -s`, mitmproxy prints a line per flow with its full URL (and its
        # headers from flow_detail=2): API keys in Gemini's ?key= and Authorization would be logged.
        detail = getattr(ctx.options, "flow_detail", 0)
        if detail:
            log.warning(
                "flow_detail=%s: mitmproxy logs every request's URL%s, where API keys travel "
                "(Gemini's ?key=); run with --set flow_detail=0, as `tollhouse run` does",
                detail,
                " and headers" if detail >= 2 else "",
            )

    @contained("scope")
    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        assert self.catalog is not None
        sni = data.client_hello.sni
        # The SNI names the host in regular and transparent modes; in reverse (and upstream)
        # modes the client may name the gateway itself, and the target is where we connect.
        # (An upstream override may already have changed the address; the server's SNI keeps
        # the provider's name.)
        server = data.context.server
        target = server.sni or (server.address[0] if server.address else None)
        entry = self.catalog.match(sni) or self.catalog.match(target)
        if entry is None or (not entry.decrypt and entry.handling != Handling.BLOCK):
            data.ignore_connection = True
        if entry is not None and entry.handling == Handling.OBSERVE:
            # Shadow AI: the connection is seen (who, which app, when) without being decrypted.
            audit = ctx.master.addons.get("audit")
            if audit is not None:
                client = data.context.client.peername
                audit.observe_connection(
                    client_addr=client[0] if client else None, sni=sni, handling=entry.handling
                )

    @contained("scope")
    def http_connect_error(self, flow: http.HTTPFlow) -> None:
        """A CONNECT to an AI host that failed upstream (mitmproxy connects before answering the
        CONNECT): the client never gets to send its request, so this is the exchange's only
        trace. Refusals by the gateway's own stages (407) are not upstream failures."""
        if transit_of(flow) or flow.response is None or flow.response.status_code < 500:
            return
        assert self.catalog is not None
        host = flow.request.host
        entry = self.catalog.match(host)
        if entry is None or entry.handling == Handling.OBSERVE:
            return
        peer = flow.client_conn.peername
        why = flow.server_conn.error or flow.response.get_text(strict=False) or ""
        record = ExchangeRecord(
            started_at=datetime.fromtimestamp(flow.request.timestamp_start, UTC),
            client_addr=peer[0] if peer else None,
            host=host,
            method=flow.request.method,
            provider=entry.name,
            operation=Operation.UNKNOWN,
            status=flow.response.status_code,
            decision=Decision.ERROR,
            # mitmproxy appends advice about connection strategies, meant for its own log
            error=why.split(" If you plan to redirect", 1)[0],
        )
        identify = ctx.master.addons.get("identify")
        if identify is not None:  # who sent the CONNECT, from its credentials or its address
            record.user_id, record.team, record.identity_source = identify.who(flow.client_conn)
        flow.metadata[KEY] = Transit(entry=entry, record=record)

    @fail_closed("scope")
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live or transit_of(flow):
            return
        assert self.catalog is not None
        # The TLS server name first: it decided what was decrypted, so it names the API family.
        # Then the provider name kept as SNI upstream (reverse mode: the client names the
        # gateway), then the Host header (plain HTTP), then where the request goes.
        host, entry = None, None
        for candidate in (
            flow.client_conn.sni,
            flow.server_conn.sni,
            flow.request.pretty_host,
            flow.request.host,
        ):
            if entry := self.catalog.match(candidate):
                host = candidate
                break
        # Only where the client's TLS server name is itself a catalog host: in reverse mode the
        # client names the gateway, and mitmproxy sets Host to the provider.
        misdirected = self.catalog.match(flow.client_conn.sni) is not None and _misdirected(flow)
        if entry is None or (entry.handling == Handling.OBSERVE and not misdirected):
            return  # not ours: forwarded untouched and never recorded
        peer = flow.client_conn.peername
        record = ExchangeRecord(
            client_addr=peer[0] if peer else None,
            host=host,
            method=flow.request.method,
            path=flow.request.path.split("?", 1)[0],  # query strings may carry API keys
            provider=entry.name,
        )
        transit = Transit(entry=entry, record=record)
        flow.metadata[KEY] = transit
        if misdirected:
            # A Host that names another service than the TLS server name is a bug or domain
            # fronting; either way the gateway would scan by one name and the server route
            # by another.
            message = "the Host header does not match the TLS server name; it was not sent"
            refuse(flow, transit, 421, Refusal.INVALID_REQUEST, message, "scope")
            return
        if entry.handling == Handling.BLOCK:
            refuse(
                flow,
                transit,
                403,
                Refusal.PERMISSION,
                f"{entry.name} is blocked by your organization's AI policy",
                "scope",
            )


def _misdirected(flow: http.HTTPFlow) -> bool:
    """True when the client's TLS server name and its Host header (or :authority) disagree."""
    sni, host = flow.client_conn.sni, flow.request.host_header
    if not sni or not host:
        return False
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host.strip("[]")
    return name.lower().rstrip(".") != sni.lower().rstrip(".")
