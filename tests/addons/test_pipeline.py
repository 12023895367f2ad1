"""The request stages together, driven with mitmproxy's test helpers (no network)."""

from __future__ import annotations

import gzip
import inspect
import json
import zlib
from pathlib import Path

import brotli
import pytest
from mitmproxy.net import encoding as mitm_encoding
from mitmproxy.test import taddons, tflow

from addons._flow import transit_of
from addons.commit import Commit
from addons.meter import Meter
from addons.parse import Parse
from addons.scope import Scope

RULES = Path(__file__).resolve().parents[2] / "rules"
ENCODERS = {
    "gzip": gzip.compress,
    "br": brotli.compress,
    "zstd": lambda data: mitm_encoding.encode(data, "zstd"),
    "deflate": zlib.compress,
}


@pytest.fixture
def chain(tmp_path):
    stages = [Scope(), Parse(), Meter(), Commit()]
    with taddons.context(*stages) as tctx:
        tctx.options.tollhouse_rules = str(RULES)
        tctx.options.tollhouse_data = str(tmp_path)
        yield stages


async def send(stages, flow) -> None:
    for hook in ("requestheaders", "request"):
        for stage in stages:
            method = getattr(stage, hook, None)
            if method is not None:
                result = method(flow)
                if inspect.isawaitable(result):
                    await result


def openai_flow(body: bytes, path: str = "/v1/chat/completions", **headers: str):
    flow = tflow.tflow()
    flow.request.scheme, flow.request.port = "https", 443
    flow.request.method = "POST"
    flow.request.host = "api.openai.com"
    flow.client_conn.sni = flow.request.host  # the TLS server name, as a client sends it
    flow.request.path = path
    flow.request.headers["host"] = "api.openai.com"
    flow.request.headers["content-type"] = "application/json"
    for key, value in headers.items():
        flow.request.headers[key.replace("_", "-")] = value
    flow.request.raw_content = body
    flow.request.headers["content-length"] = str(len(body))
    return flow


CHAT = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hello there"},
    ],
    "stream": True,
}


@pytest.mark.parametrize("encoding", sorted(ENCODERS))
async def test_encoded_bodies_are_decoded_parsed_and_reencoded(chain, encoding):
    raw = json.dumps(CHAT).encode()
    flow = openai_flow(ENCODERS[encoding](raw), content_encoding=encoding)
    await send(chain, flow)
    transit = transit_of(flow)
    assert flow.response is None
    prompt = [s.text for s in transit.exchange.segments if s.role != "field"]
    assert prompt == ["You are terse.", "Hello there"]
    assert transit.record.tokens_in_estimated > 0
    # The gateway asked for streamed usage, so the body changed; it stays in the client's encoding.
    assert flow.request.headers["content-encoding"] == encoding
    sent = json.loads(flow.request.get_content())
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"] == CHAT["messages"]


async def test_an_unchanged_body_is_forwarded_byte_for_byte(chain):
    raw = b'{"model": "gpt-4o-mini",   "messages": [{"role": "user", "content": "hi"}]}'
    flow = openai_flow(raw)
    await send(chain, flow)
    assert flow.request.raw_content == raw
    assert transit_of(flow).record.request_body == raw.decode()


async def test_a_corrupt_encoding_is_refused_not_forwarded(chain):
    flow = openai_flow(b"definitely not gzip", content_encoding="gzip")
    await send(chain, flow)
    assert flow.response.status_code == 400
    assert flow.response.headers["x-should-retry"] == "false"
    assert json.loads(flow.response.content)["error"]["type"] == "invalid_request_error"
    assert transit_of(flow).record.decision == "block"


async def test_malformed_json_gets_a_provider_shaped_error(chain):
    flow = openai_flow(b'{"model": "gpt-4o", "messages": [')
    await send(chain, flow)
    assert flow.response.status_code == 400
    assert "invalid request" in json.loads(flow.response.content)["error"]["message"]


async def test_unknown_endpoints_are_read_in_full_by_the_generic_path(chain):
    body = {"training_file": "file-abc", "suffix": "note AKIAQWERTYUIOPASDFGH"}
    flow = openai_flow(json.dumps(body).encode(), path="/v1/fine_tuning/jobs")
    await send(chain, flow)
    transit = transit_of(flow)
    assert flow.response is None
    assert (transit.record.operation, transit.record.decision) == ("unknown", "allow")
    texts = {s.text for s in transit.exchange.segments}
    assert {
        "training_file",
        "file-abc",
        "note AKIAQWERTYUIOPASDFGH",
        "/v1/fine_tuning/jobs",
    } <= texts


async def test_a_failing_stage_fails_closed(chain, monkeypatch):
    meter = chain[2]
    monkeypatch.setattr(meter.counter, "count_prompt", lambda *a: 1 / 0)
    flow = openai_flow(json.dumps(CHAT).encode())
    await send(chain, flow)
    assert flow.response.status_code == 502
    assert transit_of(flow).record.reason.startswith("meter:")


async def test_signed_bedrock_bodies_are_read_but_never_rewritten(chain):
    body = json.dumps({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}).encode()
    flow = tflow.tflow()
    flow.request.scheme, flow.request.port = "https", 443
    flow.request.method = "POST"
    flow.request.host = "bedrock-runtime.us-east-1.amazonaws.com"
    flow.client_conn.sni = flow.request.host  # the TLS server name, as a client sends it
    flow.request.headers["host"] = flow.request.host
    flow.request.path = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    flow.request.headers["authorization"] = (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    )
    flow.request.raw_content = body
    flow.request.headers["content-length"] = str(len(body))
    stages = chain
    # Parse and meter only: then a stage wants to change the text.
    for stage in stages[:3]:
        for hook in ("requestheaders", "request"):
            method = getattr(stage, hook, None)
            if method is not None:
                result = method(flow)
                if inspect.isawaitable(result):
                    await result
    transit = transit_of(flow)
    assert transit.exchange.signed and transit.record.signed
    assert transit.exchange.segments[0].text == "hi"
    transit.exchange.set_text(0, "[REDACTED]")
    stages[3].request(flow)
    assert flow.response.status_code == 403
    assert "signed" in json.loads(flow.response.content)["message"]
    assert flow.request.raw_content == body
