"""The audit's scrub boundary, driven through mitmproxy's addon manager (no network): client text
in a path, a model name, a JSON key or an event's detail never reaches an audit row as it was."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import http
from mitmproxy.proxy.layers.http import HttpRequestHeadersHook, HttpRequestHook, HttpResponseHook
from mitmproxy.test import taddons, tflow

from addons._flow import transit_of
from addons.audit import Audit, scrub_row
from addons.commit import Commit
from addons.dlp import Dlp
from addons.parse import Parse
from addons.scope import Scope
from addons.settle import Settle

RULES = Path(__file__).resolve().parents[2] / "rules"
AWS = "AKIAQ7RZ3MXKT2LWPV4N"
GITHUB = "ghp_Zq3xY8wLm2Pa9Rt5Kv7Nb4Hc6Jd1Fs0Ge2Qw"
EMAIL = "alice.jones@acme-corp.com"


class Recorder:
    """Stands in for the DuckDB writer behind the boundary: keeps what would be written."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, dict[str, Any]]] = []

    def submit(self, table: str, row: dict[str, Any]) -> None:
        self.rows.append((table, dict(row)))

    def start(self) -> None: ...

    def close(self) -> None: ...

    def dump(self) -> str:
        return json.dumps(self.rows, default=str)

    def table(self, name: str) -> list[dict[str, Any]]:
        return [row for table, row in self.rows if table == name]


@pytest.fixture
def gateway(tmp_path):
    """The request stages, the DLP stage and the audit, with a recorder behind the audit."""
    stages = [Scope(), Parse(), Dlp(), Commit(), Settle(), Audit()]
    with taddons.context(*stages) as tctx:
        tctx.options.tollhouse_rules = str(RULES)
        tctx.options.tollhouse_data = str(tmp_path)
        audit = stages[-1]
        audit.writer.inner.close()
        recorder = audit.writer.inner = Recorder()
        yield tctx, recorder


async def exchange(tctx, flow: http.HTTPFlow) -> None:
    """The flow through the chain as the proxy drives it; answered by the provider if the
    gateway did not answer itself."""
    manager = tctx.master.addons
    await manager.handle_lifecycle(HttpRequestHeadersHook(flow))
    await manager.handle_lifecycle(HttpRequestHook(flow))
    if flow.response is None:
        body = {"id": "msg_1", "type": "message", "model": "claude-sonnet-4-6", "content": []}
        flow.response = http.Response.make(200, json.dumps(body), {"content-type": "json"})
    await manager.handle_lifecycle(HttpResponseHook(flow))


def anthropic_flow(body: dict | bytes, path: str = "/v1/messages") -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.request.scheme, flow.request.port, flow.request.method = "https", 443, "POST"
    flow.request.host = "api.anthropic.com"
    flow.client_conn.sni = flow.server_conn.sni = "api.anthropic.com"
    flow.request.path = path
    flow.request.headers["host"] = "api.anthropic.com"
    flow.request.headers["content-type"] = "application/json"
    flow.request.headers["x-api-key"] = "sk-ant-test"
    flow.request.content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return flow


def tool_call(input_: Any, model: str = "claude-sonnet-4-6") -> dict:
    return {
        "model": model,
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "look this up"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": input_}],
            },
        ],
    }


async def test_a_finding_under_a_planted_json_key_is_located_without_the_key(gateway):
    tctx, recorder = gateway
    flow = anthropic_flow(tool_call({AWS: EMAIL}))
    await exchange(tctx, flow)
    findings = recorder.table("findings")
    assert findings, recorder.rows  # the email was found, under a key that is a secret
    assert all(AWS not in row["location"] for row in findings)
    assert any("[AWS_ACCESS_KEY_ID]" in row["location"] for row in findings)
    (row,) = recorder.table("exchanges")
    for name in ("path", "model_requested", "model_sent", "reason", "error", "shadow_reason"):
        assert AWS not in str(row[name]) and EMAIL not in str(row[name])


async def test_a_parse_error_quoting_a_planted_key_is_recorded_without_it(gateway):
    tctx, recorder = gateway
    nested: Any = "deep"
    for _ in range(80):  # deeper than the parser follows: its error names the path
        nested = {"a": nested}
    flow = anthropic_flow(tool_call({GITHUB: nested}))
    await exchange(tctx, flow)
    (row,) = recorder.table("exchanges")
    assert row["decision"] == "block" and row["reason"]
    assert GITHUB not in recorder.dump()


async def test_a_planted_model_name_and_query_string_are_scrubbed(gateway):
    tctx, recorder = gateway
    flow = anthropic_flow(tool_call("x", model=f"claude-{AWS}"), path=f"/v1/messages?k={GITHUB}")
    await exchange(tctx, flow)
    (row,) = recorder.table("exchanges")
    assert row["model_requested"] == "claude-[AWS_ACCESS_KEY_ID]"
    # (The body is what went upstream: scanning it is the DLP stage's part, not the audit's.)
    recorded = json.dumps({k: v for k, v in row.items() if k != "request_body"}, default=str)
    assert AWS not in recorded and GITHUB not in recorded


async def test_the_exchange_log_line_names_the_model_scrubbed(gateway, caplog):
    tctx, _ = gateway
    caplog.set_level(logging.INFO, "tollhouse")
    await exchange(tctx, anthropic_flow(tool_call("x", model=f"claude-{AWS}")))
    assert AWS not in caplog.text
    assert "claude-[AWS_ACCESS_KEY_ID]" in caplog.text


async def test_rows_other_stages_write_directly_pass_the_boundary_too(gateway):
    tctx, recorder = gateway
    audit = tctx.master.addons.get("audit")
    audit.writer.submit("exchanges", {"path": f"/v1/files/{AWS}", "reason": f"x: {EMAIL}"})
    audit.writer.submit("connections", {"sni": f"{AWS}.example.net"})
    assert AWS not in recorder.dump() and EMAIL not in recorder.dump()


async def test_event_details_are_scrubbed_at_any_depth_and_numbers_stay(gateway):
    tctx, recorder = gateway
    flow = anthropic_flow(tool_call("x"))
    await tctx.master.addons.handle_lifecycle(HttpRequestHeadersHook(flow))
    transit = transit_of(flow)
    transit.event("test", "planted", locations=[f"$.{AWS}"], nested={"k": {EMAIL: 3}}, size=7)
    await exchange(tctx, flow)
    (event,) = [e for e in recorder.table("events") if e["kind"] == "planted"]
    assert AWS not in json.dumps(event, default=str) and EMAIL not in json.dumps(event, default=str)
    assert event["detail"]["size"] == 7
    assert event["detail"]["locations"] == ["$.[AWS_ACCESS_KEY_ID]"]
    assert event["detail"]["nested"] == {"k": {"[EMAIL_ADDRESS]": 3}}


def test_without_the_dlp_stage_client_fields_become_fingerprints_and_codes_stay():
    row = {
        "path": f"/v1/files/{AWS}",
        "model_requested": f"gpt-{AWS}",
        "reason": f"parse: invalid request: $.{AWS}: expected string, got number",
        "shadow_reason": f"unknown-app: unknown application '{AWS}'; no-identity: none",
        "decision": "block",
        "status": 400,
    }
    scrubbed = scrub_row(None, "exchanges", row)
    assert AWS not in json.dumps(scrubbed)
    assert scrubbed["path"].startswith("[unscanned:")
    assert scrubbed["reason"].startswith("parse: [unscanned:")
    assert scrubbed["shadow_reason"].startswith("unknown-app: [unscanned:")
    assert "; no-identity: [unscanned:" in scrubbed["shadow_reason"]
    assert scrubbed["status"] == 400 and scrubbed["decision"] == "block"


def test_a_refusal_body_quoting_client_text_is_scrubbed_on_a_block():
    row = {"decision": "block", "response_body": f'{{"error": "bad key {AWS}"}}'}
    assert AWS not in scrub_row(None, "exchanges", row)["response_body"]
