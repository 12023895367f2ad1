"""The wire stage on its own, driven with mitmproxy's test helpers (no network)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow

from addons._flow import transit_of
from addons.scope import Scope
from addons.wire import Wire

RULES = Path(__file__).resolve().parents[2] / "rules"
BODY = b'{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'


@pytest.fixture
def stages(tmp_path):
    scope, wire = Scope(), Wire()
    with taddons.context(scope, wire) as tctx:
        tctx.options.tollhouse_rules = str(RULES)
        tctx.options.tollhouse_data = str(tmp_path)
        yield scope, wire


def flow_to(host: str, body: bytes, **headers: str) -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.request.scheme, flow.request.port, flow.request.method = "https", 443, "POST"
    flow.request.host = host
    flow.request.path = "/v1/chat/completions"
    flow.request.headers["host"] = host
    flow.client_conn.sni = host  # the TLS server name, as a client sends it
    flow.request.headers["content-type"] = "application/json"
    for key, value in headers.items():
        flow.request.headers[key.replace("_", "-")] = value
    flow.request.raw_content = body
    flow.request.headers["content-length"] = str(len(body))
    return flow


async def run(stages, flow: http.HTTPFlow) -> None:
    scope, wire = stages
    scope.requestheaders(flow)
    await wire.request(flow)


def refusal(flow: http.HTTPFlow) -> str:
    assert flow.response is not None and flow.response.status_code == 400
    assert flow.response.headers["x-tollhouse-decision"] == "block; stage=wire"
    reply = json.loads(flow.response.content)
    if "error" not in reply:  # Bedrock's shape: {"message": ...} and an error-type header
        return reply["message"]
    assert reply["error"]["type"] == "invalid_request_error"
    return reply["error"]["message"]


async def test_a_plain_body_is_left_as_is_and_handed_on(stages):
    flow = flow_to("api.openai.com", BODY)
    await run(stages, flow)
    assert flow.response is None
    assert transit_of(flow).body == BODY
    assert flow.request.raw_content == BODY


async def test_an_encoded_body_is_forwarded_as_it_was_scanned(stages):
    raw = gzip.compress(BODY[:20]) + gzip.compress(BODY[20:])
    flow = flow_to("api.openai.com", raw, content_encoding="gzip")
    await run(stages, flow)
    assert flow.response is None
    assert transit_of(flow).body == BODY
    assert "content-encoding" not in flow.request.headers
    assert flow.request.raw_content == BODY
    assert flow.request.headers["content-length"] == str(len(BODY))


async def test_request_trailers_are_refused(stages):
    flow = flow_to("api.openai.com", BODY)
    flow.request.trailers = http.Headers([(b"x-note", b"AKIAQ3EGRN7YW5XTPLZB")])
    await run(stages, flow)
    assert refusal(flow).startswith("request trailers are not accepted")
    assert transit_of(flow).record.decision == "block"
    assert "AKIA" not in transit_of(flow).record.reason


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda h: h.add("content-length", "3"), "the content-length header is repeated"),
        (lambda h: h.add("content-type", "text/plain"), "the content-type header is repeated"),
        (
            lambda h: h.__setitem__("transfer-encoding", "chunked"),
            "both transfer-encoding and content-length",
        ),
        (lambda h: h.__setitem__("content-length", "2"), "content-length does not match"),
        (lambda h: h.__setitem__("content-type", "text/plain; charset=utf-7"), "charset utf-7"),
        (lambda h: h.__setitem__("content-encoding", "gzip"), "gzip body could not be decoded"),
    ],
)
async def test_ambiguous_framing_and_encodings_are_refused(stages, edit, reason):
    flow = flow_to("api.openai.com", BODY)
    edit(flow.request.headers)
    await run(stages, flow)
    assert reason in refusal(flow)
    assert transit_of(flow).body is None


async def test_a_chunked_http2_request_is_refused(stages):
    flow = flow_to("api.openai.com", BODY)
    del flow.request.headers["content-length"]
    flow.request.headers["transfer-encoding"] = "chunked"
    flow.request.http_version = "HTTP/2.0"
    await run(stages, flow)
    assert "only a chunked transfer-encoding over HTTP/1.1" in refusal(flow)


async def test_a_signed_encoded_body_is_refused_rather_than_broken(stages):
    raw = gzip.compress(BODY)
    flow = flow_to(
        "bedrock-runtime.us-east-1.amazonaws.com",
        raw,
        content_encoding="gzip",
        authorization="AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/us-east-1/bedrock",
    )
    await run(stages, flow)
    assert "signed (SigV4) request body cannot be content-encoded" in refusal(flow)
    assert flow.request.raw_content == raw


async def test_hosts_outside_the_catalog_are_not_touched(stages):
    flow = flow_to("example.com", b"\x1f\x8bnot gzip", content_encoding="gzip")
    await run(stages, flow)
    assert flow.response is None and transit_of(flow) is None
    assert flow.request.headers["content-encoding"] == "gzip"


async def test_a_failure_inside_the_stage_fails_closed(stages, monkeypatch):
    def broken(raw, headers):
        raise RuntimeError("AKIAQ3EGRN7YW5XTPLZB")

    monkeypatch.setattr("addons.wire.decode_body", broken)
    flow = flow_to("api.openai.com", BODY)
    await run(stages, flow)
    assert flow.response is not None and flow.response.status_code == 502
    assert "AKIA" not in flow.response.get_text()
