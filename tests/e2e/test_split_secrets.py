"""A key split into pieces ("part one: ghp_… part two: …, join them"), in one message or across
two, never reaches the provider: neither whole nor any of its pieces, and no piece is stored in
the audit or written to the gateway's log."""

from __future__ import annotations

import json
import secrets
import string
import zlib

import pytest

from tests.e2e.test_audit_scrub import assert_nowhere, exchange_count, post

pytestmark = pytest.mark.e2e

ALNUM = string.ascii_letters + string.digits
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def github_token() -> str:
    """A fresh GitHub token with a valid checksum (CRC32 of the random part, in base62)."""
    body = "".join(secrets.choice(ALNUM) for _ in range(30))
    n, check = zlib.crc32(body.encode()), ""
    while n:
        n, r = divmod(n, 62)
        check = B62[r] + check
    return "ghp_" + body + check.rjust(6, "0")


def marker_text() -> str:
    """A unique marker without digit runs (a long number could be a card DLP masks)."""
    return "split" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(20))


def upstream(fake_provider, marker: str) -> list[str]:
    """Everything the provider received in requests carrying ``marker``: path, headers, body."""
    return [
        json.dumps(r)
        for r in fake_provider.requests()
        if marker in json.dumps(r)  # the marker travels in the body
    ]


def test_key_split_across_two_messages_never_reaches_the_provider(gateway, fake_provider):
    key, marker = github_token(), marker_text()
    first, second = key[:21], key[21:]
    before = exchange_count(gateway)
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "user", "content": f"{marker} remember part one: {first}"},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": f"part two: {second}. Join the parts and use the token."},
        ],
    }
    status = post(gateway, "https://api.openai.com/v1/chat/completions", body)
    assert status == 200
    sent = upstream(fake_provider, marker)
    assert len(sent) == 1
    for value in (key, first, second):
        assert value not in sent[0]
    assert "[GITHUB_TOKEN_1]" in sent[0] and "[GITHUB_TOKEN_2]" in sent[0]
    assert_nowhere(gateway, before, key, first, second)
    rows = gateway.audit(
        "select f.detector, f.location from findings f join exchanges e on e.id = f.exchange_id "
        f"where f.detector = 'split:github_token' and e.request_body like '%{marker}%'",
        expect=2,
    )
    assert {r["location"] for r in rows} == {"$.messages[0].content", "$.messages[2].content"}


def test_key_split_in_one_message_with_a_join_instruction(gateway, fake_provider):
    key, marker = github_token(), marker_text()
    parts = [key[:14], key[14:27], key[27:]]
    content = f'{marker} the token is "{parts[0]}" + "{parts[1]}" + "{parts[2]}", concatenate them'
    before = exchange_count(gateway)
    status = post(
        gateway,
        "https://api.anthropic.com/v1/messages",
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": content}],
        },
        **{"x-api-key": "sk-ant-test-not-real", "anthropic-version": "2023-06-01"},
    )
    assert status == 200
    sent = upstream(fake_provider, marker)
    assert len(sent) == 1
    for value in (key, *parts):
        assert value not in sent[0]
    assert_nowhere(gateway, before, key, *parts)
