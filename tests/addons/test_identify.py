"""The identify stage with mitmproxy's test helpers: CONNECT authentication remembered per client
connection, header removal, 407 challenges, provider-shaped 403s, monitor-mode shadow marks."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from mitmproxy import connection
from mitmproxy.test import taddons, tflow

from addons._flow import transit_of
from addons.identify import Identify
from addons.observe import KEY as OBSERVE_KEY
from addons.observe import Observation, Observe
from addons.scope import Scope
from tests.unit.identity.idfixtures import ALICE_KEY, BOB_KEY, basic, write_identities
from tollhouse.identity.keys import ENV, fingerprint

RULES = Path(__file__).resolve().parents[2] / "rules"
SECRET = "addon-test-secret"


def setup(tmp_path: Path, monkeypatch, mode: str):
    monkeypatch.setenv(ENV, SECRET)
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(RULES / "hosts.yaml", rules / "hosts.yaml")
    return write_identities(rules, SECRET.encode(), mode=mode)


@pytest.fixture(params=["monitor", "enforce"])
def stage(request, tmp_path, monkeypatch):
    material = setup(tmp_path, monkeypatch, request.param)
    scope, identify = Scope(), Identify()
    with taddons.context(scope, identify) as tctx:
        tctx.configure(scope, tollhouse_rules=str(material.rules), tollhouse_data=str(tmp_path))
        yield scope, identify, material, request.param


def connect(identify, client, header: str | None, host="api.openai.com"):
    flow = tflow.tflow(client_conn=client)
    flow.request.method, flow.request.host, flow.request.port = "CONNECT", host, 443
    flow.request.path = ""
    if header:
        flow.request.headers["Proxy-Authorization"] = header
    return flow


def request(scope, client, *, app: str | None = None, key: str = BOB_KEY, creds: str | None = None):
    flow = tflow.tflow(client_conn=client)
    flow.request.host = "api.openai.com"
    flow.client_conn.sni = flow.request.host  # the TLS server name, as a client sends it
    flow.request.headers["host"] = "api.openai.com"
    flow.request.headers["authorization"] = f"Bearer {key}"
    if app:
        flow.request.headers["X-Tollhouse-App"] = app
    if creds:
        flow.request.headers["Proxy-Authorization"] = creds
    scope.requestheaders(flow)
    return flow


def client() -> connection.Client:
    c = tflow.tclient_conn()
    c.peername = ("192.0.2.10", 50000)
    return c


async def test_connect_credentials_hold_for_the_tunnel_and_never_go_upstream(stage):
    scope, identify, _, _ = stage
    conn = client()
    await identify.http_connect(connect(identify, conn, basic("alice")))
    flow = request(scope, conn, app="support-bot", key=ALICE_KEY)
    await identify.requestheaders(flow)
    assert flow.response is None
    assert "proxy-authorization" not in flow.request.headers
    assert "x-tollhouse-app" not in flow.request.headers
    assert flow.request.headers["authorization"] == f"Bearer {ALICE_KEY}"  # the provider's own
    record = transit_of(flow).record
    assert (record.user_id, record.team, record.app) == ("alice", "support", "support-bot")
    assert record.identity_source == "basic+key" and not record.shadow
    assert record.key_fingerprint == fingerprint(SECRET.encode(), ALICE_KEY)
    assert transit_of(flow).policy == "standard"


async def test_wrong_password_on_connect(stage):
    scope, identify, _, mode = stage
    conn = client()
    flow = connect(identify, conn, basic("alice", "guess"))
    await identify.http_connect(flow)
    if mode == "enforce":
        assert flow.response.status_code == 407
        assert flow.response.headers.get_all("Proxy-Authenticate") == [
            'Basic realm="tollhouse"', 'Bearer realm="tollhouse"']  # fmt: skip
        assert b"wrong user or password" in flow.response.content
        assert b"guess" not in flow.response.content
        assert transit_of(flow).record.decision == "block"
    else:
        assert flow.response is None
        inner = request(scope, conn, app="support-bot")
        await identify.requestheaders(inner)
        record = transit_of(inner).record
        assert record.shadow and record.shadow_reason.startswith("auth-failed: ")
        assert inner.response is None


async def test_no_credentials(stage):
    scope, identify, _, mode = stage
    conn = client()
    flow = connect(identify, conn, None)
    await identify.http_connect(flow)
    if mode == "enforce":
        assert flow.response.status_code == 407  # the client can retry with credentials
        assert b"proxy authentication required" in flow.response.content
        return
    assert flow.response is None
    inner = request(scope, conn)
    await identify.requestheaders(inner)
    record = transit_of(inner).record
    assert inner.response is None and record.shadow
    assert [r.split(":")[0] for r in record.shadow_reason.split("; ")] == [
        "no-identity", "unregistered-key", "no-app"]  # fmt: skip
    assert BOB_KEY not in str(record.as_row())


async def test_authenticated_without_application(stage):
    scope, identify, material, mode = stage
    conn = client()
    await identify.http_connect(connect(identify, conn, "Bearer " + material.token("ES256")))
    flow = request(scope, conn)
    await identify.requestheaders(flow)
    record = transit_of(flow).record
    assert record.user_id == "alice" and record.identity_source == "jwt"
    if mode == "enforce":
        assert flow.response.status_code == 403
        assert flow.response.headers["x-should-retry"] == "false"
        body = flow.response.json()["error"]["message"]
        assert "no application" in body and "is not registered" in body
        assert BOB_KEY not in body and record.decision == "block"
    else:
        assert flow.response is None and record.shadow


async def test_token_expiring_during_the_tunnel_stops_counting(stage, monkeypatch):
    scope, identify, material, mode = stage
    conn = client()
    token = material.token(exp=int(time.time()) + 60)
    await identify.http_connect(connect(identify, conn, "Bearer " + token))
    monkeypatch.setattr(time, "time", lambda: 10**10)
    flow = request(scope, conn, app="support-bot", key=ALICE_KEY)
    await identify.requestheaders(flow)
    record = transit_of(flow).record
    assert "the proxy token has expired" in record.shadow_reason
    assert (flow.response is not None) == (mode == "enforce")


async def test_plain_http_proxy_requests_carry_credentials_each_time(stage):
    scope, identify, _, mode = stage
    conn = client()  # no CONNECT: plain-HTTP proxying
    flow = request(scope, conn, app="support-bot", key=ALICE_KEY, creds=basic("alice"))
    await identify.requestheaders(flow)
    assert flow.response is None and transit_of(flow).record.user_id == "alice"
    assert "proxy-authorization" not in flow.request.headers
    anonymous = request(scope, conn, app="support-bot", key=ALICE_KEY)
    await identify.requestheaders(anonymous)
    if mode == "enforce":
        assert anonymous.response.status_code == 407
        assert "Proxy-Authenticate" in anonymous.response.headers
        assert transit_of(anonymous).record.decision == "block"
    else:
        assert transit_of(anonymous).record.shadow


async def test_device_range_needs_no_credentials(stage):
    scope, identify, _, _ = stage
    conn = client()
    conn.peername = ("10.50.8.20", 40000)  # build-farm, enforce whatever the global mode
    flow = connect(identify, conn, None)
    await identify.http_connect(flow)
    assert flow.response is None
    inner = request(scope, conn, app="notebook")
    await identify.requestheaders(inner)
    record = transit_of(inner).record
    assert inner.response is None and record.user_id == "build-farm"
    assert record.identity_source == "network+header" and transit_of(inner).policy == "strict"


async def test_other_hosts_are_left_alone_but_lose_proxy_headers(stage):
    scope, identify, _, _ = stage
    conn = client()
    tunnel = connect(identify, conn, None, host="example.com")
    await identify.http_connect(tunnel)
    assert tunnel.response is None
    flow = tflow.tflow(client_conn=conn)
    flow.request.host = "example.com"
    flow.client_conn.sni = flow.request.host  # the TLS server name, as a client sends it
    flow.request.headers["Proxy-Authorization"] = basic("alice")
    scope.requestheaders(flow)
    await identify.requestheaders(flow)
    assert flow.response is None and transit_of(flow) is None
    assert "proxy-authorization" not in flow.request.headers


def test_observed_connection_counts_bytes_and_keeps_no_content():
    observe = Observe()
    with taddons.context(observe):
        flow = tflow.ttcpflow()
        flow.messages.clear()
        flow.metadata[OBSERVE_KEY] = Observation(app="chatgpt", sni="chatgpt.com", started=0.0)
        from mitmproxy.tcp import TCPMessage

        for from_client, size in ((True, 517), (False, 4000), (True, 90), (False, 12000)):
            flow.messages.append(TCPMessage(from_client, b"x" * size))
            observe.tcp_message(flow)
        observation = flow.metadata[OBSERVE_KEY]
        assert (observation.bytes_up, observation.bytes_down) == (607, 16000)
        assert len(flow.messages) == 1


# ---- attacks ---------------------------------------------------------------------------------


def _hostile_token() -> str:
    import base64
    import json

    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"Bearer {b64({'alg': 'RS256', 'kid': ['rs256']})}.{b64({'sub': 'alice'})}.c2ln"


async def test_a_hostile_token_on_a_plain_http_request_fails_closed(stage):
    # An exception in the stage would let the request go upstream unattributed in enforce mode.
    scope, identify, _, mode = stage
    flow = request(scope, client(), app="support-bot", key=ALICE_KEY, creds=_hostile_token())
    await identify.requestheaders(flow)
    record = transit_of(flow).record
    assert record.shadow and record.shadow_reason.startswith("auth-failed: ")
    assert (flow.response is not None) == (mode == "enforce")
    if mode == "enforce":
        assert flow.response.status_code == 407


async def test_a_hostile_token_on_connect_is_challenged(stage):
    _, identify, _, mode = stage
    flow = connect(identify, client(), _hostile_token())
    await identify.http_connect(flow)
    assert (flow.response is not None) == (mode == "enforce")


async def test_connect_credentials_do_not_stay_on_the_kept_connect_flow(stage):
    _, identify, _, _ = stage
    for host in ("api.openai.com", "example.com"):
        flow = connect(identify, client(), basic("alice"), host=host)
        await identify.http_connect(flow)
        assert "proxy-authorization" not in flow.request.headers
    for task in list(identify._pending):
        await task


async def test_alices_tunnel_identity_is_not_shared_with_another_client_on_her_address(stage):
    scope, identify, _, mode = stage
    alice, other = client(), client()  # the same address (NAT, a shared host), two connections
    await identify.http_connect(connect(identify, alice, basic("alice")))
    await identify.http_connect(connect(identify, other, None))
    flow = request(scope, other, app="support-bot", key=ALICE_KEY)
    await identify.requestheaders(flow)
    assert transit_of(flow).record.user_id is None
    assert (flow.response is not None) == (mode == "enforce")


async def test_proxy_headers_are_removed_even_without_an_identity_file(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(RULES / "hosts.yaml", rules / "hosts.yaml")
    scope, identify = Scope(), Identify()
    with taddons.context(scope, identify) as tctx:
        tctx.configure(scope, tollhouse_rules=str(rules), tollhouse_data=str(tmp_path))
        assert identify.identifier is None
        conn = client()
        tunnel = connect(identify, conn, basic("alice"))
        await identify.http_connect(tunnel)
        assert "proxy-authorization" not in tunnel.request.headers
        for host in ("api.openai.com", "example.com"):
            flow = tflow.tflow(client_conn=conn)
            flow.request.host = host
            flow.client_conn.sni = flow.request.host  # the TLS server name, as a client sends it
            flow.request.headers["Proxy-Authorization"] = basic("alice")
            flow.request.headers["X-Tollhouse-App"] = "support-bot"
            scope.requestheaders(flow)
            await identify.requestheaders(flow)
            assert "proxy-authorization" not in flow.request.headers
            assert "x-tollhouse-app" not in flow.request.headers


async def test_a_failed_connect_row_names_who_sent_it(stage):
    scope, identify, _, _ = stage
    conn = client()
    flow = connect(identify, conn, basic("alice"))
    await identify.http_connect(flow)
    # mitmproxy could not reach the provider and answered the CONNECT itself.
    from mitmproxy import http

    flow.response = http.Response.make(502, b"connection refused")
    scope.http_connect_error(flow)
    record = transit_of(flow).record
    assert (record.user_id, record.team, record.decision) == ("alice", "support", "error")
