"""Finding a provider API key in a request, and fingerprinting it without keeping it."""

from __future__ import annotations

import os

import pytest

from tollhouse.identity import keys


@pytest.mark.parametrize(
    ("headers", "url"),
    [
        ({"authorization": "Bearer sk-THEKEY"}, "/v1/chat/completions"),
        ({"x-api-key": "sk-THEKEY"}, "/v1/messages"),
        ({"api-key": "sk-THEKEY"}, "/openai/deployments/x/chat/completions"),
        ({"x-goog-api-key": "sk-THEKEY"}, "/v1beta/models/g:generateContent"),
        ({}, "/v1beta/models/g:generateContent?alt=sse&key=sk-THEKEY"),
        (
            {"authorization": "AWS4-HMAC-SHA256 Credential=AKIATHEKEY0000000000/20250101/"
             "us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=abc"},
            "/model/x/converse",
        ),
    ],
    ids=["openai", "anthropic", "azure", "gemini-header", "gemini-query", "bedrock-sigv4"],
)  # fmt: skip
def test_each_provider_key_is_found(headers, url):
    key = keys.find_key(headers, url)
    assert key is not None and "THEKEY" in key


def test_no_key():
    assert keys.find_key({"authorization": "Basic abc"}, "/v1/models") is None


def test_fingerprint_is_keyed_and_short():
    a = keys.fingerprint(b"secret-a", "sk-live-123")
    assert len(a) == 16 and int(a, 16) >= 0
    assert a == keys.fingerprint(b"secret-a", "sk-live-123")
    assert a != keys.fingerprint(b"secret-b", "sk-live-123")
    assert "sk-live" not in a


def test_secret_file_is_created_private_and_reused(tmp_path):
    first = keys.load_secret(tmp_path / "data", environ={})
    path = tmp_path / "data" / keys.SECRET_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    assert keys.load_secret(tmp_path / "data", environ={}) == first
    assert len(first) == 32


def test_secret_from_the_environment_wins(tmp_path):
    assert keys.load_secret(tmp_path, environ={keys.ENV: "from-env"}) == b"from-env"
    assert not os.path.exists(tmp_path / keys.SECRET_NAME)


def test_every_distinct_key_is_found():
    headers = {"x-api-key": "sk-ant-registered", "authorization": "Bearer sk-personal"}
    assert keys.find_keys(headers, "/v1/messages?key=sk-personal") == [
        "sk-ant-registered",
        "sk-personal",
    ]
    assert keys.find_key(headers, "/v1/messages") == "sk-ant-registered"
