"""The response side of the chain, driven with mitmproxy's test helpers (no network)."""

from __future__ import annotations

import inspect
import json
import logging
from pathlib import Path

import pytest
from mitmproxy import http
from mitmproxy.addons.dumper import Dumper
from mitmproxy.flow import Error
from mitmproxy.test import taddons, tflow

from addons._flow import transit_of
from addons.commit import Commit
from addons.meter import Meter
from addons.parse import Parse
from addons.scope import Scope
from addons.settle import Settle

RULES = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture
def chain(tmp_path):
    stages = [Scope(), Parse(), Meter(), Commit(), Settle()]
    with taddons.context(*stages) as tctx:
        tctx.options.tollhouse_rules = str(RULES)
        tctx.options.tollhouse_data = str(tmp_path)
        yield stages


async def run(stages, flow, *hooks: str) -> None:
    for hook in hooks:
        for stage in stages:
            method = getattr(stage, hook, None)
            if method is not None:
                result = method(flow)
                if inspect.isawaitable(result):
                    await result


def flow_to(host: str, path: str, body: dict, **headers: str) -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.request.scheme, flow.request.port, flow.request.method = "https", 443, "POST"
    flow.request.host = host
    flow.client_conn.sni = flow.request.host  # the TLS server name, as a client sends it
    flow.request.path = path
    flow.request.headers["host"] = host
    flow.request.headers["content-type"] = "application/json"
    for key, value in headers.items():
        flow.request.headers[key.replace("_", "-")] = value
    flow.request.content = json.dumps(body).encode()
    return flow


def streamed_chat() -> http.HTTPFlow:
    body = {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    return flow_to("api.openai.com", "/v1/chat/completions", body)


def sse_response() -> http.Response:
    return http.Response.make(200, b"", {"content-type": "text/event-stream"})


async def test_a_relay_with_nothing_to_send_yet_sends_no_chunk(chain):
    """Half an event is held back (the gateway may have to drop it). The relay must then give
    mitmproxy no chunk at all: an empty one ends a chunked HTTP/1.1 body at the client."""
    flow = streamed_chat()
    await run(chain, flow, "requestheaders", "request")
    assert transit_of(flow).exchange.drop_stream_usage
    flow.response = sse_response()
    await run(chain, flow, "responseheaders")
    relay = flow.response.stream
    event = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
    assert list(relay(event[:10])) == []
    assert relay(event[10:]) == event
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n'
    assert list(relay(usage)) == []  # dropped: the client did not ask for it
    assert relay(b"data: [DONE]\n\n") == b"data: [DONE]\n\n"
    assert list(relay(b"")) == []
    assert transit_of(flow).stream_reader.summary.usage.input_tokens == 3


@pytest.mark.parametrize(
    ("response", "message", "status"),
    [
        (sse_response(), "HTTP/1 protocol error: peer closed connection", 200),  # broke midway
        (None, "Certificate verify failed: unable to get local issuer certificate", 502),
        (None, "Client disconnected.", None),
        (None, Error.KILLED_MESSAGE, None),
    ],
)
async def test_a_failed_exchange_records_the_status_the_client_saw(
    chain, response, message, status
):
    flow = streamed_chat()
    await run(chain, flow, "requestheaders", "request")
    flow.response = response
    flow.error = Error(message)
    await run(chain, flow, "error")
    record = transit_of(flow).record
    assert (record.status, record.decision, record.error) == (status, "error", message)


async def test_a_signed_stream_keeps_every_header_it_was_signed_with(chain):
    body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    flow = flow_to(
        "bedrock-runtime.us-east-1.amazonaws.com",
        "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream",
        body,
        authorization="AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=accept-encoding;content-type;host, Signature=00",
        accept_encoding="gzip",
    )
    before = flow.request.copy()
    await run(chain, flow, "requestheaders", "request")
    assert transit_of(flow).exchange.signed and flow.response is None
    assert flow.request.headers.fields == before.headers.fields
    assert flow.request.raw_content == before.raw_content and flow.request.path == before.path


async def test_a_failed_connect_to_an_ai_host_becomes_an_exchange(chain):
    flow = tflow.tflow()
    flow.request.method, flow.request.host, flow.request.port = "CONNECT", "api.groq.com", 443
    flow.response = http.Response.make(
        502, b"Cannot connect to 10.0.0.1:443: refused If you plan to redirect requests away..."
    )
    await run(chain, flow, "http_connect_error")
    record = transit_of(flow).record
    assert (record.host, record.provider, record.method) == ("api.groq.com", "groq", "CONNECT")
    assert (record.status, record.decision) == (502, "error")
    assert record.error == "Cannot connect to 10.0.0.1:443: refused"


@pytest.mark.parametrize(
    ("host", "status"), [("api.groq.com", 407), ("example.com", 502), ("chatgpt.com", 502)]
)
async def test_other_failed_connects_are_not_exchanges(chain, host, status):
    flow = tflow.tflow()
    flow.request.method, flow.request.host, flow.request.port = "CONNECT", host, 443
    flow.response = http.Response.make(status)
    await run(chain, flow, "http_connect_error")
    assert transit_of(flow) is None


def test_mitmdump_flow_lines_are_flagged_because_they_print_keys(caplog):
    scope = Scope()
    with taddons.context(scope, Dumper()) as tctx:
        tctx.configure(scope, tollhouse_rules=str(RULES))
        with caplog.at_level(logging.WARNING):
            scope.running()
        assert "flow_detail=0" in caplog.text
        caplog.clear()
        tctx.options.flow_detail = 0
        scope.running()
        assert not caplog.text
