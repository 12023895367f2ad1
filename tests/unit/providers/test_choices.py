"""How many answers a request asks for: each can be as long as the output limit allows."""

from __future__ import annotations

import json

import pytest

from tollhouse.providers import ADAPTERS
from tollhouse.providers.base import ParseError, Request


def parse(api: str, path: str, body: dict):
    request = Request("POST", "h", path, {}, json.dumps(body).encode())
    return ADAPTERS[api].parse("p", request)


def test_openai_n():
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "n": 4}
    assert parse("openai", "/v1/chat/completions", body).choices == 4
    del body["n"]
    assert parse("openai", "/v1/chat/completions", body).choices == 1
    with pytest.raises(ParseError, match=r"\$\.n"):
        parse("openai", "/v1/chat/completions", {**body, "n": "4"})


def test_gemini_candidate_count():
    body = {"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"candidateCount": 2}}
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    assert parse("gemini", path, body).choices == 2
    assert parse("gemini", path, {"contents": body["contents"]}).choices == 1
