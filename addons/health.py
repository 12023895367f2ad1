"""Health: ``GET /healthz`` addressed to the gateway itself, for load balancers and probes.

200 with a JSON report when the audit writer is alive, the rules are loaded and the budget store
answers; 503 with the same report otherwise, and while the gateway drains on SIGTERM. A request is
"addressed to the gateway" when it is plain HTTP to the gateway's own address and port (see
:func:`addressed_to_gateway`); the same request for any other host is proxied as usual.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import socket
import time
from typing import Any

from mitmproxy import ctx, http

from addons._flow import described, fail_closed, transit_of

log = logging.getLogger("tollhouse.health")
PATHS = ("/healthz", "/health")
STORE_TIMEOUT = 3.0  # a load balancer's check times out too; answer before it does
# Stage name -> the attribute that holds its loaded policy.
POLICIES = {"scope": "catalog", "dlp": "scanner", "injection": "scanner", "meter": "prices"}


@functools.cache
def _own_names() -> frozenset[str]:
    names = {"localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn()}
    return frozenset(n.lower() for n in names if n)


def _plain(address: str) -> str:
    address = address.lower().strip("[]").rstrip(".")
    return address.removeprefix("::ffff:")  # an IPv4 client on a dual-stack socket


def addressed_to_gateway(flow: http.HTTPFlow) -> bool:
    """True for a plain-HTTP request whose target is the gateway itself: the port it was received
    on and one of its own names (the address the client reached, the listen address, loopback,
    the machine's host name). Such a request has nowhere to be proxied to."""
    request = flow.request
    sockname = flow.client_conn.sockname
    if flow.client_conn.tls or request.scheme != "http" or request.method == "CONNECT":
        return False
    if not sockname:
        return False
    # A Host without a port (a balancer's check: `Host: 10.0.0.5`) names this gateway too.
    host_header = (request.host_header or "").rsplit("]", 1)[-1]
    if request.port != sockname[1] and ":" in host_header:
        return False
    own = _own_names() | {_plain(sockname[0]), _plain(ctx.options.listen_host or "")}
    return _plain(request.host) in own - {""}


class Health:
    @fail_closed("health")
    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        # A flow with a transit is an AI exchange (should a reordered chain put scope first).
        if flow.response or flow.error or not flow.live or transit_of(flow):
            return
        if flow.request.method not in ("GET", "HEAD") or flow.request.path.split("?")[0] not in (
            PATHS
        ):
            return
        if not addressed_to_gateway(flow):
            return
        report = await self.report()
        flow.response = http.Response.make(
            200 if report["status"] == "ok" else 503,
            json.dumps(report).encode() + b"\n",
            {"content-type": "application/json", "cache-control": "no-store"},
        )

    async def report(self) -> dict[str, Any]:
        """What the gateway needs to serve: each check is true when it holds."""
        lifecycle = ctx.master.addons.get("lifecycle")
        audit = ctx.master.addons.get("audit")
        writer = getattr(audit, "writer", None)
        checks: dict[str, Any] = {
            "audit_writer": bool(writer is not None and writer.stats.alive),
            "rules": {
                name: getattr(ctx.master.addons.get(name), attr, None) is not None
                for name, attr in POLICIES.items()
                if ctx.master.addons.get(name) is not None
            },
            "store": await self._store(),
        }
        draining = bool(getattr(lifecycle, "draining", False))
        ok = checks["audit_writer"] and all(checks["rules"].values()) and checks["store"] != "down"
        reloaded = getattr(lifecycle, "reloaded_at", None)
        return {
            "status": "draining" if draining else ("ok" if ok else "fail"),
            **checks,
            "rules_reloaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(reloaded))
            if reloaded
            else None,
        }

    async def _store(self) -> str:
        """'up', 'down', or 'none' when no budget is configured (nothing to reach)."""
        engine = getattr(ctx.master.addons.get("budget"), "engine", None)
        if engine is None:
            return "none"
        store = engine.store
        probe = getattr(store, "ping", None) or functools.partial(store.states, time.time())
        try:
            await asyncio.wait_for(asyncio.to_thread(probe), STORE_TIMEOUT)
        except Exception as exc:  # any failure means "not reachable"
            log.warning("health: the budget store did not answer (%s)", described(exc))
            return "down"
        return "up"
