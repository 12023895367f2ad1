"""Anthropic's SDK and Gemini's REST API through the gateway, JSON and streamed."""

from __future__ import annotations

import json
import subprocess

import anthropic
import pytest

pytestmark = pytest.mark.e2e


def test_anthropic_message_and_stream(as_user):
    client = anthropic.Anthropic(api_key="sk-ant-test-not-real", max_retries=0)
    message = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=200,
        system="Be brief.",
        messages=[{"role": "user", "content": "Hello through the gateway"}],
    )
    assert "fake" in message.content[0].text
    rows = as_user.audit(
        "select provider, operation, tokens_in, tokens_out, cost_usd, model_answered "
        f"from exchanges where response_body like '%{message.id}%'"
    )
    row = rows[0]
    assert (row["provider"], row["operation"]) == ("anthropic", "messages")
    assert row["tokens_in"] == message.usage.input_tokens
    assert row["tokens_out"] == message.usage.output_tokens
    assert row["cost_usd"] > 0

    with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=200,
        messages=[{"role": "user", "content": "Stream through the gateway"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "fake" in text
    rows = as_user.audit(
        "select stream, tokens_in, tokens_out, cost_usd from exchanges "
        f"where response_body like '%{final.id}%'"
    )
    assert rows[0]["stream"] is True
    assert rows[0]["tokens_out"] == final.usage.output_tokens > 0
    assert rows[0]["cost_usd"] > 0


def curl(gateway, url: str, body: dict, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "curl",
            "-sS",
            "--fail-with-body",
            "-N",
            "--proxy",
            gateway.proxy,
            "--cacert",
            str(gateway.ca),
            "-H",
            "content-type: application/json",
            "-H",
            "x-goog-api-key: test",
            "--data",
            json.dumps(body),
            *extra,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_gemini_generate_and_stream_with_curl(gateway):
    body = {"contents": [{"role": "user", "parts": [{"text": "Hello Gemini via curl"}]}]}
    base = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash"
    result = curl(gateway, f"{base}:generateContent", body)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert "fake" in answer["candidates"][0]["content"]["parts"][0]["text"]
    rows = gateway.audit(
        "select provider, operation, model_requested, tokens_in, tokens_out, cost_usd "
        f"from exchanges where response_body like '%{answer['responseId']}%'"
    )
    row = rows[0]
    assert (row["provider"], row["operation"], row["model_requested"]) == (
        "gemini",
        "generate",
        "gemini-2.5-flash",
    )
    assert row["tokens_in"] == answer["usageMetadata"]["promptTokenCount"]
    assert row["tokens_out"] == answer["usageMetadata"]["candidatesTokenCount"]
    assert row["cost_usd"] > 0

    result = curl(gateway, f"{base}:streamGenerateContent?alt=sse", body)
    assert result.returncode == 0, result.stderr
    events = [
        json.loads(line[5:]) for line in result.stdout.splitlines() if line.startswith("data:")
    ]
    assert len(events) > 1
    rows = gateway.audit(
        "select stream, tokens_out from exchanges "
        f"where response_body like '%{events[0]['responseId']}%' and stream"
    )
    assert rows[0]["tokens_out"] == events[-1]["usageMetadata"]["candidatesTokenCount"]
