"""Deny by default, as an attacker would test it: a secret planted in any endpoint, field,
encoding or part of the request never reaches the provider readable, and never lands in the
audit log or the gateway's log. Every case goes through a real gateway to the fake provider,
which records exactly what it received."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.conftest import BIN, FakeProvider, Gateway, user_client

pytestmark = pytest.mark.e2e

_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def aws_key() -> str:
    """A fresh AWS access key id, so that each case can be traced on its own."""
    return "AKIA" + "".join(secrets.choice(_B32) for _ in range(16))


@dataclass
class Case:
    """One request: where it goes and what it carries. ``{key}`` is replaced by a fresh key."""

    id: str
    path: str
    body: object = None
    host: str = "api.openai.com"
    method: str = "POST"
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None  # a raw body instead of JSON
    refused: int | None = None  # the status expected when the gateway refuses it outright


def fill(value: object, key: str) -> object:
    return json.loads(json.dumps(value).replace("{key}", key))


B64_TEXT = "b64:{key}"  # replaced by base64("notes: <key>") below

CASES = [
    # --- endpoints no adapter knows: read in full by the generic path ------------------------
    Case("openai-images", "/v1/images/generations", {"model": "gpt-image-1", "prompt": "{key}"}),
    Case(
        "openai-threads",
        "/v1/threads/thread_abc/messages",
        {"role": "user", "content": "my key {key}", "metadata": {"ticket": "{key}"}},
    ),
    Case("openai-conversations", "/v1/conversations", {"items": [{"content": "{key}"}]}),
    Case(
        "openai-batch-jsonl-upload",
        "/v1/files",
        content=(
            b'--BnD\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            b'--BnD\r\nContent-Disposition: form-data; name="file"; filename="b.jsonl"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n"
            b'{"custom_id":"1","body":{"messages":[{"role":"user","content":"{key}"}]}}\n'
            b"\r\n--BnD--\r\n"
        ),
        headers={"content-type": "multipart/form-data; boundary=BnD"},
    ),
    Case(
        "openai-audio-binary",
        "/v1/audio/transcriptions",
        content=(
            b'--BnD\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n{key}\r\n'
            b'--BnD\r\nContent-Disposition: form-data; name="file"; filename="a.mp3"\r\n'
            b"Content-Type: audio/mpeg\r\n\r\n\xff\xfb\x90\x00\x00\xff\xfe\x81\r\n--BnD--\r\n"
        ),
        headers={"content-type": "multipart/form-data; boundary=BnD"},
        refused=415,
    ),
    Case("openai-binary-body", "/v1/uploads/u1/parts", content=b"\x00\x9f\x92\x96{key}\xff"),
    Case(
        "anthropic-batches",
        "/v1/messages/batches",
        {"requests": [{"custom_id": "a", "params": {"messages": [{"content": "{key}"}]}}]},
        host="api.anthropic.com",
    ),
    Case(
        "gemini-cached-contents",
        "/v1beta/cachedContents",
        {"contents": [{"parts": [{"text": "{key}"}]}]},
        host="generativelanguage.googleapis.com",
    ),
    Case(
        "vertex-predict",
        "/v1/projects/p/locations/us-central1/publishers/google/models/m:predict",
        {"instances": [{"content": "{key}"}]},
        host="us-central1-aiplatform.googleapis.com",
    ),
    Case("cohere-v1-chat", "/v1/chat", {"message": "{key}"}, host="api.cohere.com"),
    Case(
        "messages-on-an-openai-style-host",
        "/v1/messages",
        {"model": "m", "messages": [{"role": "user", "content": "{key}"}]},
        host="api.groq.com",
    ),
    Case(
        "other-method", "/v1/chat/completions", {"messages": [{"content": "{key}"}]}, method="PUT"
    ),
    Case("percent-encoded-path", "/v1/chat/%63ompletions", {"messages": [{"content": "{key}"}]}),
    Case("double-slash", "//v1/chat/completions", {"x": "{key}"}, refused=400),
    Case("dot-segment", "/v1/./chat/completions", {"x": "{key}"}, refused=400),
    Case("encoded-dot-segment", "/v1/%2e%2e/v1/chat/completions", {"x": "{key}"}, refused=400),
    Case(
        "host-disagrees-with-sni",
        "/v1/messages",
        {"messages": [{"role": "user", "content": "{key}"}]},
        headers={"host": "api.anthropic.com"},
        refused=421,
    ),
    Case(
        "host-names-a-consumer-app",
        "/backend-api/conversation",
        {"x": "{key}"},
        headers={"host": "chatgpt.com"},
        refused=421,
    ),
    # --- fields of known endpoints that the parsers never read -------------------------------
    Case(
        "tool-description-and-schema",
        "/v1/chat/completions",
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "lookup",
                        "description": "uses {key}",
                        "parameters": {"type": "object", "properties": {"{key}": {}}},
                    },
                }
            ],
            "response_format": {"type": "json_schema", "json_schema": {"description": "{key}"}},
            "prediction": {"type": "content", "content": "{key}"},
        },
    ),
    Case(
        "responses-mcp-authorization",
        "/v1/responses",
        {
            "model": "gpt-4o-mini",
            "input": "hi",
            "tools": [{"type": "mcp", "server_url": "https://mcp.x", "authorization": "{key}"}],
        },
    ),
    Case(
        "anthropic-document-title-and-results",
        "/v1/messages",
        {
            "model": "claude-haiku-4-5",
            "max_tokens": 10,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "title": "{key}",
                            "context": "{key}",
                            "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                        },
                        {"type": "mcp_tool_result", "tool_use_id": "t", "content": "{key}"},
                        {"type": "text", "text": "hi"},
                    ],
                }
            ],
        },
        host="api.anthropic.com",
    ),
    Case(
        "gemini-inline-text-attachment",
        "/v1beta/models/gemini-2.5-flash:generateContent",
        {"contents": [{"parts": [{"inlineData": {"mimeType": "text/plain", "data": B64_TEXT}}]}]},
        host="generativelanguage.googleapis.com",
    ),
    Case(
        "text-labelled-as-an-image",
        "/v1/chat/completions",
        {
            "model": "gpt-4o-mini",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,"}},
                    ],
                }
            ],
            "metadata": {"note": B64_TEXT},
        },
    ),
    Case(
        "embeddings-token-ids",
        "/v1/embeddings",
        {"model": "text-embedding-3-small", "input": ["tokens:{key}"]},
    ),
    Case(
        "json-object-key",
        "/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi", "{key}": 1}]},
    ),
    # --- the rest of the request: headers, query string, path -------------------------------
    Case(
        "header",
        "/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-ticket": "{key}"},
    ),
    Case(
        "query-string",
        "/v1/chat/completions?note={key}",
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
    ),
    Case("path-segment", "/v1/files/{key}", method="GET"),
]


def token_ids(text: str) -> list[int]:
    from tollhouse.tokens import TokenCounter

    counter = TokenCounter(Path(tempfile.gettempdir()) / "tollhouse-test-tiktoken")
    return counter.encoding("text-embedding-3-small").encode_ordinary(text)


def planted(case: Case, key: str) -> tuple[str, str, dict[str, str], bytes]:
    note = base64.b64encode(f"notes: {key}".encode()).decode()
    ids = json.dumps(token_ids(f"my key is {key}"))
    path = case.path.replace("{key}", key)
    headers = {k: v.replace("{key}", key) for k, v in case.headers.items()}
    if case.content is not None:
        body = case.content.replace(b"{key}", key.encode())
    elif case.body is not None:
        body = json.dumps(fill(case.body, key)).replace(json.dumps(B64_TEXT), json.dumps(note))
        body = body.replace(json.dumps(f"tokens:{key}"), ids)
        body = body.encode()
        headers.setdefault("content-type", "application/json")
    else:
        body = b""
    return case.host, path, headers, body


def readable(recorded: list[dict], key: str) -> list[str]:
    """Where ``key`` shows in what the upstream received: raw, base64-decoded, or as the token
    ids that spell it."""
    found = []
    spelled = json.dumps(token_ids(f"my key is {key}"))[1:-1]
    for entry in recorded:
        blob = json.dumps(entry)
        if key in blob:
            found.append(f"{entry['method']} {entry['path']}")
        if spelled in entry["body"].replace(" ", "").replace(",", ", "):
            found.append(f"token ids in {entry['path']}")
        for token in json.dumps(entry.get("json")).split('"'):
            try:
                if len(token) > 16 and key in base64.b64decode(token + "==").decode(
                    "utf-8", "ignore"
                ):
                    found.append(f"base64 in {entry['path']}")
            except ValueError:
                pass
    return found


def audit_dump(gateway: Gateway) -> str:
    out = []
    for table in ("exchanges", "events", "findings"):
        result = subprocess.run(
            [
                str(BIN / "tollhouse"),
                "audit",
                "--data",
                str(gateway.data),
                "--json",
                f"select * from {table}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        out.append(result.stdout)
    return "\n".join(out)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_a_planted_secret_never_reaches_the_provider_readable(
    gateway: Gateway, fake_provider: FakeProvider, case: Case
):
    key = aws_key()
    host, path, headers, body = planted(case, key)
    fake_provider.clear()
    with user_client(gateway) as client:
        response = client.request(
            case.method,
            f"https://{host}{path}",
            content=body or None,
            headers={"authorization": "Bearer sk-test", "x-case": case.id, **headers},
        )
    recorded = fake_provider.requests()
    assert readable(recorded, key) == [], f"{case.id}: {response.status_code}"
    if case.refused is not None:
        assert response.status_code == case.refused, response.text
        assert recorded == [], "a refused request reached the provider"
        assert response.headers["x-should-retry"] == "false"
    assert key not in response.text  # a refusal never quotes the client's text


def test_nothing_planted_is_in_the_audit_or_the_log(gateway: Gateway, fake_provider: FakeProvider):
    keys = []
    with user_client(gateway) as client:
        for case in CASES:
            key = aws_key()
            keys.append(key)
            host, path, headers, body = planted(case, key)
            client.request(
                case.method,
                f"https://{host}{path}",
                content=body or None,
                headers={"authorization": "Bearer sk-test", **headers},
            )
    gateway.audit(
        "select count(*) as n from exchanges where path like '/v1/files/%'", expect=1, timeout=20
    )
    import time

    time.sleep(1.5)  # the writer commits every half second
    dump = audit_dump(gateway)
    log = Path(gateway.log).read_text()
    leaked = [k for k in keys if k in dump or k in log]
    assert leaked == []
