"""One fail-closed boundary per hook: a fault anywhere in a request stage means a provider-shaped
error and nothing forwarded. Driven through mitmproxy's addon manager, whose own handler logs an
escaping exception and carries on (fail open) — so these tests see what the proxy would do."""

from __future__ import annotations

import json

import pytest
from mitmproxy import hooks
from mitmproxy.http import HTTPFlow
from mitmproxy.proxy.layers import http as http_layer
from mitmproxy.test import taddons

import addons as chain_module
from addons._flow import transit_of
from addons.audit import Audit
from addons.lifecycle import Lifecycle
from addons.settle import Settle
from tests.addons.test_pipeline import RULES, openai_flow

KEY = "AKIAQWERTYUIOPASDFGH"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"hello {KEY}"}]}

# Every stage with a request-side hook, by the name mitmproxy knows it under.
REQUEST_STAGES = [
    type(a).__name__.lower()
    for a in chain_module.addons
    if any(hasattr(a, h) for h in ("requestheaders", "request"))
    and not isinstance(a, Settle | Audit | Lifecycle)  # lifecycle only counts flows in flight
]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    # One chain for the module: loading every policy takes seconds; faults are monkeypatched
    # per test and undone after it.
    fresh = [type(a)() for a in chain_module.addons]
    with taddons.context(*fresh) as tctx:
        tctx.options.tollhouse_rules = str(RULES)
        tctx.options.tollhouse_data = str(tmp_path_factory.mktemp("fail-closed") / "data")
        yield tctx, {type(a).__name__.lower(): a for a in fresh}


async def run_request(tctx, flow: HTTPFlow) -> None:
    """The request half as the proxy runs it: every addon, every hook, through safecall."""
    await tctx.master.addons.handle_lifecycle(http_layer.HttpRequestHeadersHook(flow))
    if flow.response is None:
        await tctx.master.addons.handle_lifecycle(http_layer.HttpRequestHook(flow))


def boom(*args, **kwargs):
    raise KeyError(KEY)  # an exception whose message quotes client text


async def test_without_faults_the_request_is_forwarded(gateway):
    tctx, _ = gateway
    flow = openai_flow(json.dumps(CHAT).encode())
    await run_request(tctx, flow)
    assert flow.response is None
    assert KEY not in flow.request.get_text()  # redacted by DLP on its way


@pytest.mark.parametrize("stage", REQUEST_STAGES)
async def test_a_fault_at_the_start_of_any_stage_forwards_nothing(gateway, stage, monkeypatch):
    tctx, _ = gateway
    module = __import__(f"addons.{stage}", fromlist=["x"])
    hooked = [n for n in ("active", "transit_of", "_catalog_entry") if hasattr(module, n)]
    assert hooked, f"no fault point in addons.{stage}"
    for name in hooked:
        monkeypatch.setattr(module, name, boom)
    flow = openai_flow(json.dumps(CHAT).encode())
    await run_request(tctx, flow)
    assert flow.response is not None and flow.response.status_code == 502
    assert flow.response.headers["x-should-retry"] == "false"
    assert KEY not in flow.response.get_text()


@pytest.mark.parametrize(
    ("stage", "target"),
    [
        ("dlp", "tollhouse.dlp.scanner.DlpResult.audit_rows"),  # after the engine call
        ("injection", "tollhouse.injection.scanner.InjectionScanner.check"),
        ("meter", "tollhouse.tokens.TokenCounter.count_prompt"),
        ("parse", "tollhouse.providers.walk.cover"),
        ("commit", "tollhouse.providers.envelope.apply_envelope"),
    ],
)
async def test_a_fault_deep_inside_a_stage_forwards_nothing(gateway, stage, target, monkeypatch):
    tctx, _ = gateway
    monkeypatch.setattr(target, boom)
    if stage == "parse":
        monkeypatch.setattr("addons.parse.cover", boom)
    if stage == "commit":
        monkeypatch.setattr("addons.commit.apply_envelope", boom)
    flow = openai_flow(json.dumps(CHAT).encode(), x_note=f"n {KEY}")
    await run_request(tctx, flow)
    assert flow.response is not None and flow.response.status_code == 502, stage
    transit = transit_of(flow)
    assert transit.record.decision == "block" and transit.record.reason.startswith(stage)


async def test_a_stage_missing_its_scan_is_caught_by_the_last_gate(gateway, monkeypatch):
    tctx, stages = gateway

    async def skipped(flow):  # a DLP stage that returns without scanning
        return None

    monkeypatch.setattr(stages["dlp"], "request", skipped)
    flow = openai_flow(json.dumps(CHAT).encode())
    await run_request(tctx, flow)
    assert flow.response is not None and flow.response.status_code == 502
    assert transit_of(flow).record.reason.startswith("commit")


def test_the_hooks_are_what_mitmproxy_calls():
    # The fault tests drive the proxy's own events; make sure they are the request hooks.
    assert http_layer.HttpRequestHook.name == "request"
    assert http_layer.HttpRequestHeadersHook.name == "requestheaders"
    assert issubclass(http_layer.HttpRequestHook, hooks.Hook)
