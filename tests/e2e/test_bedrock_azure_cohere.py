"""Bedrock, Azure OpenAI and Cohere through the gateway, as their users call them."""

from __future__ import annotations

import base64
import json
import uuid

import httpx
import openai
import pytest

from tests.e2e.conftest import user_client
from tollhouse.providers.eventstream import EventStreamDecoder

pytestmark = pytest.mark.e2e

BEDROCK = "https://bedrock-runtime.us-east-1.amazonaws.com"
MODEL_PATH = "anthropic.claude-3-5-haiku-20241022-v1%3A0"  # as the AWS SDKs encode the id
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"


def marker() -> str:
    return f"mark{uuid.uuid4().hex[:12]}"


def row_for(gateway, mark: str, columns: str) -> dict:
    rows = gateway.audit(f"select {columns} from exchanges where request_body like '%{mark}%'")
    assert len(rows) == 1, rows
    return rows[0]


def frames(raw: bytes) -> list[tuple[str, dict]]:
    """The AWS event-stream frames a client received: (event type, JSON payload)."""
    decoder = EventStreamDecoder()
    out = [(m.event_type, json.loads(m.payload)) for m in decoder.feed(raw)]
    decoder.close()
    return out


def bedrock(gateway, action: str, body: dict) -> httpx.Response:
    """A Bedrock call with an API key (a bearer token, unsigned), as Bedrock API keys are used."""
    with user_client(gateway) as client:
        return client.post(
            f"{BEDROCK}/model/{MODEL_PATH}/{action}",
            json=body,
            headers={"authorization": "Bearer ABSKtest-bedrock-api-key"},
        )


AUDITED = "operation, model_requested, stream, status, decision, tokens_in, tokens_out, cost_usd"


@pytest.mark.parametrize("action", ["converse", "converse-stream"])
def test_bedrock_converse_with_an_api_key(gateway, action):
    mark = marker()
    body = {
        "messages": [{"role": "user", "content": [{"text": f"Hello Bedrock {mark}"}]}],
        "inferenceConfig": {"maxTokens": 100},
    }
    response = bedrock(gateway, action, body)
    assert response.status_code == 200
    if action == "converse":
        usage = response.json()["usage"]
        assert "fake" in response.json()["output"]["message"]["content"][0]["text"]
    else:
        events = frames(response.content)
        text = "".join(p["delta"]["text"] for kind, p in events if kind == "contentBlockDelta")
        assert "fake" in text
        usage = next(p["usage"] for kind, p in events if kind == "metadata")
    row = row_for(gateway, mark, AUDITED)
    assert row["operation"] == "converse" and row["model_requested"] == MODEL
    assert row["stream"] is (action == "converse-stream")
    assert (row["status"], row["decision"]) == (200, "allow")
    assert (row["tokens_in"], row["tokens_out"]) == (usage["inputTokens"], usage["outputTokens"])
    assert row["cost_usd"] > 0


@pytest.mark.parametrize("action", ["invoke", "invoke-with-response-stream"])
def test_bedrock_invoke_model(gateway, action):
    mark = marker()
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": f"Hello Bedrock {mark}"}],
    }
    response = bedrock(gateway, action, body)
    assert response.status_code == 200
    if action == "invoke":
        tokens = (
            response.json()["usage"]["input_tokens"],
            response.json()["usage"]["output_tokens"],
        )
    else:
        chunks = [json.loads(base64.b64decode(p["bytes"])) for _, p in frames(response.content)]
        metrics = chunks[-1]["amazon-bedrock-invocationMetrics"]
        tokens = (metrics["inputTokenCount"], metrics["outputTokenCount"])
    row = row_for(gateway, mark, AUDITED)
    assert row["operation"] == "invoke" and row["model_requested"] == MODEL
    assert (row["tokens_in"], row["tokens_out"]) == tokens
    assert row["cost_usd"] > 0


def test_a_sigv4_signed_stream_reaches_bedrock_exactly_as_signed(gateway, fake_provider):
    """The gateway reads a signed request but changes nothing the signature covers: path, body,
    and every signed header (here accept-encoding too, as some SDKs sign it)."""
    mark = marker()
    body = json.dumps(
        {"messages": [{"role": "user", "content": [{"text": f"Hello signed {mark}"}]}]}
    ).encode()
    signed = {
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/bedrock/"
        "aws4_request, SignedHeaders=accept-encoding;content-type;host;x-amz-content-sha256;"
        "x-amz-date, Signature=0123456789abcdef",
        "accept-encoding": "gzip, deflate",
        "content-type": "application/json",
        "x-amz-date": "20260101T000000Z",
        "x-amz-content-sha256": "f" * 64,
    }
    path = f"/model/{MODEL_PATH}/converse-stream"
    with user_client(gateway) as client:
        response = client.post(f"{BEDROCK}{path}", content=body, headers=signed)
    assert response.status_code == 200
    assert any(kind == "metadata" for kind, _ in frames(response.content))

    sent = [r for r in fake_provider.requests() if mark in r["body"]]
    assert len(sent) == 1
    assert sent[0]["path"] == path
    assert sent[0]["body"].encode() == body
    assert {k: sent[0]["headers"].get(k) for k in signed} == signed
    assert sent[0]["headers"]["host"] == "bedrock-runtime.us-east-1.amazonaws.com"
    row = row_for(gateway, mark, "signed, tokens_in, tokens_out")
    assert row["signed"] is True and row["tokens_out"] > 0


def azure() -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint="https://tollhouse-test.openai.azure.com",
        api_version="2024-10-21",
        api_key="azure-test-key",
        max_retries=0,
    )


def test_azure_openai_deployment_json_and_stream(as_user, fake_provider):
    """The deployment names the model in the path; Azure answers with the model it runs, which is
    what prices the exchange, streamed or not."""
    client = azure()
    mark = marker()
    reply = client.chat.completions.create(
        model="prod-chat", messages=[{"role": "user", "content": f"Hello Azure {mark}"}]
    )
    assert "fake" in reply.choices[0].message.content
    sent = [r for r in fake_provider.requests() if mark in r["body"]]
    assert sent[0]["path"].startswith("/openai/deployments/prod-chat/chat/completions?")
    assert sent[0]["headers"]["api-key"] == "azure-test-key"
    columns = "provider, model_requested, model_answered, stream, tokens_in, tokens_out, cost_usd"
    row = row_for(as_user, mark, columns)
    assert (row["provider"], row["model_requested"]) == ("azure-openai", "prod-chat")
    assert row["model_answered"] == reply.model
    assert row["tokens_out"] == reply.usage.completion_tokens
    assert row["cost_usd"] > 0

    mark = marker()
    chunks = list(
        client.chat.completions.create(
            model="prod-chat",
            messages=[{"role": "user", "content": f"Stream Azure {mark}"}],
            stream=True,
        )
    )
    assert "fake" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert all(c.usage is None for c in chunks)  # the usage chunk the gateway asked for is gone
    row = row_for(as_user, mark, columns)
    assert row["stream"] is True
    assert row["model_answered"] == next(c.model for c in chunks if c.model)
    assert row["tokens_out"] > 0
    assert row["cost_usd"] > 0


@pytest.mark.parametrize("stream", [False, True])
def test_cohere_v2_chat(gateway, stream):
    mark = marker()
    body = {
        "model": "command-r-plus",
        "messages": [{"role": "user", "content": f"Hello Cohere {mark}"}],
        "stream": stream,
    }
    with user_client(gateway) as client:
        response = client.post(
            "https://api.cohere.com/v2/chat",
            json=body,
            headers={"authorization": "Bearer co-test-key"},
        )
    assert response.status_code == 200
    if stream:
        events = [
            json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")
        ]
        usage = events[-1]["delta"]["usage"]["tokens"]
    else:
        usage = response.json()["usage"]["tokens"]
    row = row_for(gateway, mark, AUDITED)
    assert (row["operation"], row["model_requested"], row["stream"]) == (
        "chat",
        "command-r-plus",
        stream,
    )
    assert (row["tokens_in"], row["tokens_out"]) == (usage["input_tokens"], usage["output_tokens"])
    assert row["cost_usd"] > 0
