"""Identify: who is calling, with which application, under which policy (rules/identities.yaml).

Explicit-proxy HTTPS clients send ``Proxy-Authorization`` on the CONNECT only, so credentials are
checked in ``http_connect`` and remembered for that client connection (every request in the
tunnel inherits them); plain-HTTP proxied requests carry them on each request. In enforce mode a
CONNECT to a decrypted AI host is answered with 407 when the client must authenticate (bad
credentials, or none and its address is no registered device), so that it retries with them; a
request inside a tunnel that still cannot be attributed gets a provider-shaped 403. The proxy
credentials and the application header never go upstream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from pathlib import Path

from mitmproxy import connection, ctx, exceptions, http
from mitmproxy.proxy import mode_specs

from addons._flow import KEY, active, fail_closed, refuse, scrub_client_text
from tollhouse.audit.record import Decision, ExchangeRecord
from tollhouse.catalog import Handling, HostEntry
from tollhouse.identity import AuthFailure, Identifier, Mode, Principal, Reason, Verdict
from tollhouse.identity.keys import find_keys
from tollhouse.policyfile import PolicyError
from tollhouse.providers.base import Refusal
from tollhouse.transit import Transit

log = logging.getLogger("tollhouse.identify")

PROXY_AUTHORIZATION = "proxy-authorization"
DEFAULT_APP_HEADER = "x-tollhouse-app"
AuthResult = Principal | AuthFailure | None  # None: the client sent no proxy credentials


class Identify:
    def __init__(self) -> None:
        self.identifier: Identifier | None = None
        # Client connection → what its CONNECT proved. Presence also marks the connection as a
        # tunnel; entries go when mitmproxy drops the connection.
        self.tunnels: weakref.WeakKeyDictionary[connection.Client, AuthResult] = (
            weakref.WeakKeyDictionary()
        )
        self._pending: set[asyncio.Task] = set()  # background checks (kept referenced)

    def configure(self, updated):
        if "tollhouse_rules" not in updated and "tollhouse_data" not in updated:
            return
        path = Path(ctx.options.tollhouse_rules) / "identities.yaml"
        if not path.exists():
            log.warning("no %s: identities are not checked", path)
            self.identifier = None
            return
        try:
            identifier = Identifier.load(path, ctx.options.tollhouse_data)
        except (PolicyError, OSError, ValueError) as exc:
            # A running gateway keeps its last good identities; a starting one refuses to start.
            if self.identifier is None:
                raise exceptions.OptionsError(str(exc)) from exc
            log.error("keeping the previous identities: %s", exc)
            return
        if self.identifier is not None:
            self.identifier.auth.close()
        self.identifier = identifier

    # ---- CONNECT: explicit-proxy HTTPS -------------------------------------------------------

    @fail_closed("identify")
    async def http_connect(self, flow: http.HTTPFlow) -> None:
        # Read once and drop: a CONNECT flow is kept (mitmweb, flow files) with its headers.
        header = flow.request.headers.pop(PROXY_AUTHORIZATION, None)
        if self.identifier is None or flow.response or flow.error or not flow.live:
            return
        entry = _catalog_entry(flow.request.host)
        if entry is None:
            # Not an AI host by name, but its TLS may name an observed app (CONNECT to an IP):
            # check the credentials in the background, for attribution only; never delayed.
            if header:
                task = asyncio.create_task(self._remember(flow.client_conn, header))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
            return
        result = await self._authenticate(header) if header else None
        self.tunnels[flow.client_conn] = result
        if not (entry.decrypt or entry.handling == Handling.BLOCK):
            return  # observed apps: credentials only attribute the connection, never required
        ip = _client_ip(flow)
        if self.identifier.mode(ip) != Mode.ENFORCE:
            return
        if isinstance(result, AuthFailure):
            self._challenge(flow, entry, result, Reason.AUTH_FAILED, result.message)
        elif (
            result is None
            and self.identifier.config.proxy_auth
            and self.identifier.device(ip) is None
        ):
            message = "proxy authentication required (Proxy-Authorization: Basic or Bearer)"
            self._challenge(flow, entry, result, Reason.NO_IDENTITY, message)

    # ---- every request -----------------------------------------------------------------------

    @fail_closed("identify")
    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        headers = flow.request.headers
        # Both are meant for the gateway alone: never forwarded, whatever the host, and even
        # when no identity file is loaded.
        header = headers.pop(PROXY_AUTHORIZATION, None)
        app_header = self.identifier.app_header if self.identifier else DEFAULT_APP_HEADER
        app_name = headers.pop(app_header, None)
        transit = active(flow)
        if transit is None or self.identifier is None:
            return
        result: Principal | AuthFailure | None
        if header:
            result = await self._authenticate(header)
        else:
            result = self.tunnels.get(flow.client_conn)
        if isinstance(result, Principal) and not result.valid_at(time.time()):
            result = AuthFailure("bearer", "the proxy token has expired (exp)")
        found = find_keys(headers, flow.request.path)
        verdict = self.identifier.resolve(
            client_ip=_client_ip(flow),
            principal=result if isinstance(result, Principal) else None,
            failure=result if isinstance(result, AuthFailure) else None,
            app_name=app_name,
            key=found[0] if found else None,
            other_keys=found[1:],
        )
        _apply(transit, verdict)
        if not verdict.refused:
            return
        plain_proxy = (
            isinstance(flow.client_conn.proxy_mode, mode_specs.RegularMode)
            and flow.client_conn not in self.tunnels
        )
        if not verdict.identified and plain_proxy and self.identifier.config.proxy_auth:
            # A plain-HTTP proxied request: the client can answer a 407 with credentials.
            flow.response = self._auth_required(verdict.message(), result)
            transit.refused = True
            transit.record.decision = Decision.BLOCK
            transit.record.reason = f"identify: {verdict.message()}"
        else:
            refuse(flow, transit, 403, Refusal.PERMISSION, verdict.message(), "identify")

    # ---- helpers -----------------------------------------------------------------------------

    def who(self, client: connection.Client) -> tuple[str | None, str | None, str | None]:
        """(user, team, source) for a connection: its CONNECT credentials, else its device."""
        if self.identifier is None:
            return None, None, None
        principal = self.tunnels.get(client)
        if not isinstance(principal, Principal):
            peer = client.peername
            principal = self.identifier.device(peer[0] if peer else None)
        if principal is None:
            return None, None, None
        return principal.user_id, principal.team, principal.source

    async def _remember(self, client: connection.Client, header: str) -> None:
        self.tunnels[client] = await self._authenticate(header)

    async def _authenticate(self, header: str) -> Principal | AuthFailure:
        """The header's principal or refusal; password hashes run off the event loop. Fails
        closed: a check that breaks is a refusal, never a request that skips this stage."""
        assert self.identifier is not None
        try:
            return await self.identifier.auth.check_async(header)
        except Exception as exc:
            # The type only: a parser's message (or a traceback's locals) can quote the header.
            log.error("proxy credentials could not be checked (%s)", type(exc).__name__)
            return AuthFailure(
                self.identifier.auth.scheme(header), "proxy credentials could not be checked"
            )

    def done(self) -> None:
        if self.identifier is not None:
            self.identifier.auth.close()

    def _auth_required(self, message: str, result: AuthResult) -> http.Response:
        """A 407 naming what is wrong, with a challenge for each scheme the gateway accepts."""
        assert self.identifier is not None
        config = self.identifier.config
        body = {"error": {"type": "proxy_authentication_required", "message": message}}
        response = http.Response.make(
            407,
            json.dumps(body).encode(),
            {
                "content-type": "application/json",
                "x-should-retry": "false",
                "x-tollhouse-decision": "block; stage=identify",
            },
        )
        if config.basic is not None:
            response.headers.add("Proxy-Authenticate", f'Basic realm="{config.realm}"')
        if config.jwt is not None:
            error = ', error="invalid_token"' if _scheme(result) == "bearer" else ""
            response.headers.add("Proxy-Authenticate", f'Bearer realm="{config.realm}"{error}')
        return response

    def _challenge(
        self, flow: http.HTTPFlow, entry: HostEntry, result: AuthResult, code: str, message: str
    ) -> None:
        """Answer the CONNECT with 407 and audit it: the tunnel is never opened, and a client
        that supports proxy authentication retries with credentials."""
        flow.response = self._auth_required(message, result)
        peer = flow.client_conn.peername
        record = ExchangeRecord(
            client_addr=peer[0] if peer else None,
            host=flow.request.host,
            method="CONNECT",
            provider=entry.name,
            status=407,
            decision=Decision.BLOCK,
            reason=f"identify: {message}",
            shadow=True,
            shadow_reason=f"{code}: {message}",
        )
        record.finish()
        audit = ctx.master.addons.get("audit")
        if audit is not None and audit.writer is not None:
            audit.writer.submit("exchanges", record.as_row())
        flow.metadata[KEY] = Transit(entry=entry, record=record, refused=True, recorded=True)
        log.info(
            "CONNECT %s refused with 407: %s",
            scrub_client_text(flow.request.host),
            scrub_client_text(message),
        )


def _apply(transit: Transit, verdict: Verdict) -> None:
    record = transit.record
    record.user_id, record.team, record.app = verdict.user_id, verdict.team, verdict.app
    record.identity_source = verdict.source
    record.shadow, record.shadow_reason = verdict.shadow, verdict.shadow_reason
    record.key_fingerprint = verdict.key_fingerprint
    transit.policy = verdict.policy


def _catalog_entry(host: str) -> HostEntry | None:
    scope = ctx.master.addons.get("scope")
    return scope.catalog.match(host) if scope is not None and scope.catalog else None


def _client_ip(flow: http.HTTPFlow) -> str | None:
    peer = flow.client_conn.peername
    return peer[0] if peer else None


def _scheme(result: AuthResult) -> str | None:
    return result.scheme if isinstance(result, AuthFailure) else None
