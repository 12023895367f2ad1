"""A user's OpenAI SDK, pointed at the gateway only by HTTPS_PROXY and SSL_CERT_FILE."""

from __future__ import annotations

import time

import openai
import pytest

pytestmark = pytest.mark.e2e


def client() -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test-not-a-real-key", max_retries=0)


def test_chat_completion_is_answered_and_audited(as_user):
    reply = client().chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hello to the gateway please"},
        ],
    )
    assert "fake" in reply.choices[0].message.content
    assert reply.usage.prompt_tokens > 0

    rows = as_user.audit(
        "select provider, operation, model_requested, model_sent, model_answered, stream, status, "
        "tokens_in_estimated, tokens_in, tokens_out, cost_usd, decision, request_body, latency_ms "
        f"from exchanges where response_body like '%{reply.id}%'"
    )
    row = rows[0]
    assert row["provider"] == "openai"
    assert row["operation"] == "chat"
    assert row["model_requested"] == row["model_sent"] == "gpt-4o-mini"
    assert row["model_answered"] == reply.model
    assert row["stream"] is False and row["status"] == 200 and row["decision"] == "allow"
    assert row["tokens_in"] == reply.usage.prompt_tokens
    assert row["tokens_out"] == reply.usage.completion_tokens
    assert row["tokens_in_estimated"] > 0
    assert row["cost_usd"] > 0
    assert "Say hello to the gateway" in row["request_body"]
    assert row["latency_ms"] > 0


def test_streamed_chat_gets_usage_without_the_extra_chunk(as_user):
    chunks = list(
        client().chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Stream me a short answer please"}],
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "fake" in text
    # The client did not ask for usage, so it must not see the usage-only chunk the gateway added.
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)

    rows = as_user.audit(
        "select stream, tokens_in, tokens_out, cost_usd from exchanges "
        f"where response_body like '%{chunks[0].id}%'"
    )
    assert rows[0]["stream"] is True
    assert rows[0]["tokens_in"] > 0 and rows[0]["tokens_out"] > 0
    assert rows[0]["cost_usd"] > 0


def test_streamed_chat_keeps_usage_when_the_client_asked(as_user):
    chunks = list(
        client().chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Count my tokens"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = [c.usage for c in chunks if c.usage is not None]
    assert len(usage) == 1 and usage[0].completion_tokens > 0


def test_responses_api_json_and_stream(as_user):
    response = client().responses.create(model="gpt-4.1-mini", input="Describe the gateway")
    assert "fake" in response.output_text
    rows = as_user.audit(
        "select operation, tokens_in, tokens_out, cost_usd from exchanges "
        f"where response_body like '%{response.id}%'"
    )
    assert rows[0]["operation"] == "responses"
    assert rows[0]["tokens_in"] == response.usage.input_tokens
    assert rows[0]["tokens_out"] == response.usage.output_tokens

    events = list(client().responses.create(model="gpt-4.1-mini", input="Stream it", stream=True))
    done = [e for e in events if e.type == "response.completed"]
    assert done and done[0].response.usage.output_tokens > 0
    rows = as_user.audit(
        "select stream, tokens_out from exchanges "
        f"where response_body like '%{done[0].response.id}%' and stream"
    )
    assert rows[0]["tokens_out"] == done[0].response.usage.output_tokens


def test_stream_is_not_buffered(as_user):
    """The first chunk reaches the client while the provider is still sending the rest."""
    started = time.monotonic()
    stream = client().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "slow one"}],
        stream=True,
        extra_headers={"x-fake-behavior": "slow=400,chunks=6"},
    )
    first = None
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.monotonic() - started
    total = time.monotonic() - started
    assert first is not None
    # Six events 400 ms apart take over two seconds; the first must arrive long before the end.
    assert total > 2.0
    assert first < total - 1.2


def test_provider_error_passes_through_in_its_own_shape(as_user):
    with pytest.raises(openai.RateLimitError):
        client().chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "fail please"}],
            extra_headers={"x-fake-behavior": "error=429"},
        )
    rows = as_user.audit("select status, decision from exchanges where status = 429", expect=1)
    assert rows[0]["decision"] == "allow"
