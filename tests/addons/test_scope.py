from pathlib import Path

import pytest
from mitmproxy.test import taddons, tflow

from addons._flow import transit_of
from addons.scope import Scope
from tests.addons.conftest import hello_data

RULES = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture
def scope():
    addon = Scope()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, tollhouse_rules=str(RULES))
        yield addon


@pytest.mark.parametrize("sni", ["example.com", "github.com", None])
def test_other_tls_connections_are_never_decrypted(scope, sni):
    data = hello_data(sni)
    scope.tls_clienthello(data)
    assert data.ignore_connection


@pytest.mark.parametrize("sni", ["api.openai.com", "myco.openai.azure.com", "api.anthropic.com"])
def test_ai_api_connections_are_decrypted(scope, sni):
    data = hello_data(sni)
    scope.tls_clienthello(data)
    assert not data.ignore_connection


def test_observed_consumer_apps_pass_through(scope):
    data = hello_data("chatgpt.com")
    scope.tls_clienthello(data)
    assert data.ignore_connection


def test_plain_http_to_other_hosts_is_not_recorded(scope):
    flow = tflow.tflow()
    flow.request.host = "example.com"
    flow.client_conn.sni = flow.request.host  # the TLS server name, as a client sends it
    flow.request.headers["host"] = "example.com"
    scope.requestheaders(flow)
    assert transit_of(flow) is None and flow.response is None


def test_ai_requests_get_a_transit_without_the_query_string(scope):
    flow = tflow.tflow()
    flow.request.host = "generativelanguage.googleapis.com"
    flow.client_conn.sni = flow.request.host  # the TLS server name, as a client sends it
    flow.request.headers["host"] = "generativelanguage.googleapis.com"
    flow.request.path = "/v1beta/models/gemini-2.5-flash:generateContent?key=AIzaSECRET"
    scope.requestheaders(flow)
    transit = transit_of(flow)
    assert transit is not None
    assert transit.record.provider == "gemini"
    assert transit.record.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert "AIza" not in str(transit.record.as_row())


def test_blocked_consumer_app_is_refused(tmp_path):
    (tmp_path / "hosts.yaml").write_text(
        "apis: []\nconsumer_apps:\n  - name: poe\n    hosts: [poe.com]\n    handling: block\n"
    )
    addon = Scope()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, tollhouse_rules=str(tmp_path))
        data = hello_data("poe.com")
        addon.tls_clienthello(data)
        assert not data.ignore_connection  # decrypted so that the refusal can be explained
        flow = tflow.tflow()
        flow.request.host = "poe.com"
        flow.client_conn.sni = flow.request.host  # the TLS server name, as a client sends it
        flow.request.headers["host"] = "poe.com"
        addon.requestheaders(flow)
        assert flow.response.status_code == 403
        assert flow.response.headers["x-should-retry"] == "false"
        assert transit_of(flow).record.decision == "block"


def test_bad_catalog_refuses_to_start(tmp_path):
    (tmp_path / "hosts.yaml").write_text(
        "apis:\n  - provider: x\n    api: nope\n    hosts: [a.b]\n"
    )
    addon = Scope()
    with (
        taddons.context(addon) as tctx,
        pytest.raises(Exception, match=r"hosts.yaml:3: apis\[0\].api"),
    ):
        tctx.configure(addon, tollhouse_rules=str(tmp_path))


def test_bad_catalog_on_reload_keeps_the_last_good_one(tmp_path, scope):
    (tmp_path / "hosts.yaml").write_text("apis: [\n")
    with taddons.context(scope) as tctx:
        tctx.configure(scope, tollhouse_rules=str(RULES))
        tctx.configure(scope, tollhouse_rules=str(tmp_path))
        assert scope.catalog.match("api.openai.com") is not None


def test_reverse_mode_decides_by_the_target_when_the_sni_names_the_gateway(scope):
    data = hello_data("gateway.corp.example")
    data.context.server.address = ("api.openai.com", 443)
    scope.tls_clienthello(data)
    assert not data.ignore_connection
