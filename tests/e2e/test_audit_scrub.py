"""A client plants credentials where the audit log used to quote it: a JSON key, a model name, the
path of an endpoint no adapter knows, a query string, a parse error's location. Whatever the
gateway does with the request (forward it redacted, or refuse it), no planted value is stored in
any audit table nor written to the gateway's log."""

from __future__ import annotations

import json
import secrets
import string
import time
from typing import Any

import pytest

from tests.e2e.conftest import user_client
from tollhouse.audit.schema import TABLES

pytestmark = pytest.mark.e2e

OPENAI = "https://api.openai.com"
ANTHROPIC = "https://api.anthropic.com/v1/messages"
BASE32 = string.ascii_uppercase + "234567"  # the alphabet of AWS key ids
ALNUM = string.ascii_letters + string.digits


def aws_key() -> str:
    """A fresh AWS access key id (real format), so no other test's value can match."""
    return "AKIA" + "".join(secrets.choice(BASE32) for _ in range(16))


def github_token() -> str:
    return "ghp_" + "".join(secrets.choice(ALNUM) for _ in range(36))


def exchange_count(gateway) -> int:
    try:
        return gateway.audit("select count(*) as n from exchanges", timeout=0)[0]["n"]
    except AssertionError:  # no database yet: nothing recorded so far
        return 0


def audit_cells(gateway, before: int) -> list[tuple[str, str, str]]:
    """Every cell of every audit table as (table, column, text), once the new exchange's row is
    written."""
    gateway.audit(f"select count(*) as n from exchanges having count(*) > {before}")
    time.sleep(0.5)  # its findings and events are queued with it; let the batch land
    return [
        (table, column, json.dumps(value))
        for table in TABLES
        for row in gateway.audit(f"select * from {table}", expect=0)
        for column, value in row.items()
    ]


def assert_nowhere(gateway, before: int, *planted: str) -> None:
    cells = audit_cells(gateway, before)
    logged = gateway.log.read_text(errors="replace").splitlines()
    for value in planted:
        # Where it was found, never the value itself (the test's own output is a log too).
        stored = sorted({f"{table}.{column}" for table, column, text in cells if value in text})
        assert not stored, f"planted value stored in the audit: {stored}"
        lines = [line.split(value)[0][:80] for line in logged if value in line]
        assert not lines, f"planted value in gateway.log, in lines starting: {lines}"


def post(gateway, url: str, body: Any, **headers: str) -> int:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    with user_client(gateway) as client:
        response = client.post(
            url,
            content=content,
            headers={"content-type": "application/json", **headers},
        )
    return response.status_code


def chat(content: str = "hello", **extra: Any) -> dict:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], **extra}


OPENAI_KEY = {"authorization": "Bearer sk-test"}
ANTHROPIC_KEY = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}


def test_a_credential_as_a_json_key_of_a_known_request_is_not_audited(gateway):
    planted = aws_key()
    before = exchange_count(gateway)
    post(gateway, f"{OPENAI}/v1/chat/completions", chat(**{planted: 1}), **OPENAI_KEY)
    assert_nowhere(gateway, before, planted)


def test_a_credential_as_a_key_inside_tool_arguments_is_not_audited(gateway):
    planted, email = aws_key(), f"ops.{secrets.token_hex(4)}@acme-corp.com"
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 10,
        "messages": [
            {"role": "user", "content": "look it up"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "lookup", "input": {planted: email}}
                ],
            },
        ],
    }
    before = exchange_count(gateway)
    post(gateway, ANTHROPIC, body, **ANTHROPIC_KEY)
    assert_nowhere(gateway, before, planted, email)


def test_a_parse_error_under_a_planted_key_is_not_audited(gateway):
    planted = github_token()
    nested: Any = "deep"
    for _ in range(80):  # deeper than the parser follows: the error names where
        nested = {"a": nested}
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 10,
        "messages": [
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {planted: nested}}
                ],
            }
        ],
    }
    before = exchange_count(gateway)
    assert post(gateway, ANTHROPIC, body, **ANTHROPIC_KEY) >= 400
    assert_nowhere(gateway, before, planted)


def test_a_parse_error_on_a_planted_key_with_a_wrong_type_is_not_audited(gateway):
    planted = github_token()
    body = chat()
    body["messages"][0] = {"role": "user", "content": [{"type": "text", planted: 5}]}
    before = exchange_count(gateway)
    post(gateway, f"{OPENAI}/v1/chat/completions", body, **OPENAI_KEY)
    assert_nowhere(gateway, before, planted)


def test_a_credential_in_the_model_name_is_not_audited(gateway):
    planted = aws_key()
    body = chat()
    body["model"] = f"gpt-4o-mini-{planted}"
    before = exchange_count(gateway)
    post(gateway, f"{OPENAI}/v1/chat/completions", body, **OPENAI_KEY)
    assert_nowhere(gateway, before, planted)


def test_a_credential_in_the_path_of_an_unknown_endpoint_is_not_audited(gateway):
    planted = aws_key()
    before = exchange_count(gateway)
    post(gateway, f"{OPENAI}/v1/files/{planted}/content", {"purpose": "x"}, **OPENAI_KEY)
    assert_nowhere(gateway, before, planted)


def test_a_credential_in_an_encoded_path_segment_is_not_audited(gateway):
    planted = github_token()
    before = exchange_count(gateway)
    post(gateway, f"{OPENAI}/v1/vector_stores/%67{planted[1:]}", {}, **OPENAI_KEY)
    assert_nowhere(gateway, before, planted, planted[1:])


def test_a_credential_in_a_query_string_is_not_audited(gateway):
    planted = github_token()
    before = exchange_count(gateway)
    post(gateway, f"{OPENAI}/v1/chat/completions?note={planted}", chat(), **OPENAI_KEY)
    assert_nowhere(gateway, before, planted)


def test_a_credential_sent_as_the_application_name_is_not_audited(gateway):
    planted = aws_key()  # an unknown application is named in the shadow reason
    before = exchange_count(gateway)
    headers = {**OPENAI_KEY, "x-tollhouse-app": planted}
    post(gateway, f"{OPENAI}/v1/chat/completions", chat(), **headers)
    assert_nowhere(gateway, before, planted)
