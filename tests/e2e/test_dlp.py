"""Data leakage end to end: what reaches the provider is redacted, blocked entities never leave,
the user still sees their own values, and the audit log holds findings but no protected value."""

from __future__ import annotations

import anthropic
import openai
import pytest

pytestmark = pytest.mark.e2e

EMAIL = "jane.doe@acme-corp.io"
AWS_KEY = "AKIA" + "Q3EGRN7YW5XTPLZB"  # real format, not the documented example key


def test_email_and_aws_key_reach_the_provider_redacted(as_user, fake_provider):
    fake_provider.clear()
    client = openai.OpenAI(api_key="sk-test-not-real", max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {
                "role": "user",
                "content": f"[[fake:echo]] Mail {EMAIL} the key {AWS_KEY} for the deploy.",
            }
        ],
    )
    sent = fake_provider.requests()[-1]["body"]
    assert EMAIL not in sent and AWS_KEY not in sent
    assert "[EMAIL_1]" in sent and "[AWS_ACCESS_KEY_ID_1]" in sent

    # The email is restorable by policy: the user reads their own address back; the key is not.
    answer = reply.choices[0].message.content
    assert EMAIL in answer
    assert AWS_KEY not in answer and "[AWS_ACCESS_KEY_ID_1]" in answer

    rows = as_user.audit(
        "select f.entity_type, f.action, f.count, f.location, e.dlp_actions, e.request_body, "
        "e.response_body from findings f join exchanges e on e.id = f.exchange_id "
        f"where e.response_body like '%{reply.id}%' order by f.entity_type",
        expect=2,
    )
    assert [(r["entity_type"], r["action"]) for r in rows] == [
        ("AWS_ACCESS_KEY_ID", "redact"),
        ("EMAIL_ADDRESS", "redact"),
    ]
    assert rows[0]["location"] == "$.messages[0].content"
    for row in rows:
        assert EMAIL not in str(row) and AWS_KEY not in str(row)


def test_streamed_answers_are_restored_too(as_user):
    client = anthropic.Anthropic(api_key="sk-ant-test-not-real", max_retries=0)
    with client.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=200,
        messages=[{"role": "user", "content": f"[[fake:echo,chunks=7]] write to {EMAIL} today"}],
    ) as stream:
        text = "".join(stream.text_stream)
    assert EMAIL in text and "[EMAIL_1]" not in text
    rows = as_user.audit(
        "select response_body from exchanges where stream and request_body like '%[EMAIL_1]%' "
        "and provider = 'anthropic'"
    )
    assert all(EMAIL not in r["response_body"] for r in rows)


def test_a_blocked_entity_never_leaves(as_user, fake_provider):
    fake_provider.clear()
    client = openai.OpenAI(api_key="sk-test-not-real")
    with pytest.raises(openai.PermissionDeniedError) as err:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Summarize the Nightjar launch plan."}],
        )
    assert "PROJECT_CODENAME" in str(err.value)
    assert "Nightjar" not in str(err.value)
    assert fake_provider.requests() == []
    rows = as_user.audit(
        "select e.decision, e.status, f.action, e.request_body from exchanges e "
        "join findings f on f.exchange_id = e.id where f.entity_type = 'PROJECT_CODENAME'"
    )
    assert (rows[-1]["decision"], rows[-1]["status"], rows[-1]["action"]) == ("block", 403, "block")


def test_a_prompt_too_large_to_scan_is_refused_not_sent(as_user, fake_provider):
    fake_provider.clear()
    client = openai.OpenAI(api_key="sk-test-not-real", max_retries=0)
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "a " * 2_000_001}],
        )
    assert err.value.status_code == 413
    assert "4000000" in str(err.value) and "not sent" in str(err.value)
    assert fake_provider.requests() == []
