"""The gateway answers GET /proxy.pac and /wpad.dat addressed to itself, from the live catalog."""

from __future__ import annotations

from pathlib import Path

import pytest
from mitmproxy import exceptions
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tflow

from addons.pac import Pac
from addons.scope import Scope
from tollhouse.catalog import load_catalog

RULES = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture
def stages():
    pac, scope = Pac(), Scope()
    with taddons.context(pac, scope) as tctx:
        tctx.configure(scope, tollhouse_rules=str(RULES))
        yield pac, scope, tctx


def pac_request(host="127.0.0.1", port=8080, path="/proxy.pac", sockname=("127.0.0.1", 8080)):
    flow = tflow.tflow()
    flow.client_conn.sockname = sockname
    flow.request.method, flow.request.scheme = "GET", "http"
    flow.request.host, flow.request.port, flow.request.path = host, port, path
    return flow


@pytest.mark.parametrize("path", ["/proxy.pac", "/wpad.dat", "/proxy.pac?v=2"])
def test_the_pac_file_is_served_to_a_client_naming_the_gateway(stages, path):
    pac, _, _ = stages
    flow = pac_request(path=path)
    pac.requestheaders(flow)
    assert flow.response is not None and flow.response.status_code == 200
    assert flow.response.headers["content-type"] == "application/x-ns-proxy-autoconfig"
    text = flow.response.get_text()
    assert 'var GATEWAY = "PROXY 127.0.0.1:8080";' in text
    assert '"api.openai.com": GATEWAY' in text


def test_the_proxy_named_is_the_name_the_client_used(stages):
    pac, _, _ = stages
    flow = pac_request(host="Proxy.Corp.Example", sockname=("10.0.0.5", 8080))
    pac.requestheaders(flow)
    assert 'var GATEWAY = "PROXY proxy.corp.example:8080";' in flow.response.get_text()


def test_configured_proxies_replace_the_address_reached(stages):
    pac, _, tctx = stages
    tctx.configure(pac, tollhouse_pac_proxy=["gw1.corp:8080", "gw2.corp:8080"])
    flow = pac_request()
    pac.requestheaders(flow)
    assert 'var GATEWAY = "PROXY gw1.corp:8080; PROXY gw2.corp:8080";' in flow.response.get_text()
    with pytest.raises(exceptions.OptionsError, match="HOST:PORT"):
        tctx.configure(pac, tollhouse_pac_proxy=["no-port"])


@pytest.mark.parametrize(
    "change",
    [
        dict(path="/other.pac"),
        dict(port=80),  # another port: a server of its own
        dict(host="10.9.9.9"),  # another machine's address
        dict(method="POST"),
        dict(scheme="https"),
        dict(mode="reverse:https://api.openai.com"),
        dict(mode="transparent"),
    ],
)
def test_other_requests_are_left_to_the_proxy(stages, change):
    pac, _, _ = stages
    flow = pac_request(
        **{k: v for k, v in change.items() if k in ("path", "port", "host")},
        sockname=("10.0.0.5", 8080),
    )
    if "method" in change:
        flow.request.method = change["method"]
    if "scheme" in change:
        flow.request.scheme = change["scheme"]
    if "mode" in change:
        flow.client_conn.proxy_mode = ProxyMode.parse(change["mode"])
    pac.requestheaders(flow)
    assert flow.response is None


def test_the_served_file_follows_a_catalog_reload(stages, tmp_path):
    pac, scope, _ = stages
    flow = pac_request()
    pac.requestheaders(flow)
    assert "chat.example.ai" not in flow.response.get_text()
    hosts = tmp_path / "hosts.yaml"
    hosts.write_text(
        (RULES / "hosts.yaml").read_text()
        + "  - name: example-chat\n    hosts: [chat.example.ai]\n    handling: inspect\n"
    )
    scope.catalog = load_catalog(hosts)  # what scope's configure does on a reload
    again = pac_request()
    pac.requestheaders(again)
    assert '"chat.example.ai": GATEWAY' in again.response.get_text()


def test_without_a_catalog_the_answer_is_an_error_not_a_forward(tmp_path):
    pac = Pac()
    with taddons.context(pac):
        flow = pac_request()
        pac.requestheaders(flow)
        assert flow.response.status_code == 503
