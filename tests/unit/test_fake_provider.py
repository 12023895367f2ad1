"""The fake provider speaks each provider's real wire format: the official SDKs accept its answers,
streams arrive event by event, usage is computed, and it records what reached it."""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import select
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "fake_provider.py"
sys.path.insert(0, str(SCRIPT.parent))

from fake_providers import common  # noqa: E402

DEFAULT_ANSWER_WORDS = 9  # "Hello from the fake MODEL. How can I help?"
API_KEY = "sk-test-DO-NOT-LOG-1234"


@dataclass
class Fake:
    proc: subprocess.Popen[str]
    port: int
    tls_dir: Path
    log: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.tls_dir / "ca.pem"))

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        host: str | None = None,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context())
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {"content-type": "application/json", **(headers or {})}
        if host:
            all_headers["host"] = host
        conn.request(method, path, body=data, headers=all_headers)
        resp = conn.getresponse()
        out = resp.status, resp.headers, resp.read()
        conn.close()
        return out

    def post(self, path: str, body: Any, **kw: Any) -> tuple[int, http.client.HTTPMessage, Any]:
        status, headers, raw = self.request("POST", path, body, **kw)
        return status, headers, raw


def start_fake(tls_dir: Path, log: Path, *extra: str) -> Fake:
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--port", "0", "--tls-dir", str(tls_dir), *extra],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    assert ready, "fake provider did not start"
    line = proc.stdout.readline()
    assert line.startswith("fake provider listening on https://127.0.0.1:"), line
    assert f"(CA: {tls_dir / 'ca.pem'})" in line
    port = int(line.split("https://127.0.0.1:")[1].split()[0])
    return Fake(proc, port, tls_dir, log)


def stop_fake(fake: Fake, sig: int = signal.SIGTERM) -> int:
    fake.proc.send_signal(sig)
    try:
        return fake.proc.wait(10)
    finally:
        if fake.proc.poll() is None:
            fake.proc.kill()


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fake]:
    base = tmp_path_factory.mktemp("fake")
    f = start_fake(base / "tls", base / "stderr.log")
    yield f
    assert stop_fake(f) == 0


@pytest.fixture
def oai(fake: Fake) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{fake.url}/v1",
        api_key=API_KEY,
        http_client=httpx.Client(verify=fake.context()),
        max_retries=0,
    )


@pytest.fixture
def claude(fake: Fake) -> anthropic.Anthropic:
    return anthropic.Anthropic(  # DefaultHttpxClient: the SDK may use its own httpx fork
        base_url=fake.url,
        api_key=API_KEY,
        http_client=anthropic.DefaultHttpxClient(verify=fake.context()),
        max_retries=0,
    )


def sse_events(raw: bytes, separator: bytes = b"\n\n") -> list[tuple[str | None, str]]:
    """(event name, data) for each event in an SSE body."""
    out = []
    for block in raw.split(separator):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.decode().splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        out.append((name, "\n".join(data)))
    return out


def decode_event_stream(raw: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Decode AWS event-stream frames, checking both CRCs and the lengths."""
    frames = []
    pos = 0
    while pos < len(raw):
        total, headers_len, prelude_crc = struct.unpack_from(">III", raw, pos)
        assert binascii.crc32(raw[pos : pos + 8]) == prelude_crc
        (message_crc,) = struct.unpack_from(">I", raw, pos + total - 4)
        assert zlib.crc32(raw[pos : pos + total - 4]) == message_crc
        headers: dict[str, str] = {}
        h = pos + 12
        end = h + headers_len
        while h < end:
            name_len = raw[h]
            name = raw[h + 1 : h + 1 + name_len].decode()
            h += 1 + name_len
            assert raw[h] == 7  # string
            (value_len,) = struct.unpack_from(">H", raw, h + 1)
            headers[name] = raw[h + 3 : h + 3 + value_len].decode()
            h += 3 + value_len
        frames.append((headers, raw[end : pos + total - 4]))
        pos += total
    return frames


# --- TLS -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sni",
    [
        "api.openai.com",
        "myres.openai.azure.com",
        "api.anthropic.com",
        "us-central1-aiplatform.googleapis.com",
        "bedrock-runtime.us-east-1.amazonaws.com",
        "openrouter.ai",
    ],
)
def test_certificate_verifies_for_catalog_hosts_over_127_0_0_1(fake, sni):
    context = ssl.create_default_context(cafile=str(fake.tls_dir / "ca.pem"))
    with (
        socket.create_connection(("127.0.0.1", fake.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=sni) as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_hosts_yaml_adds_the_catalog_hosts(tmp_path):
    catalog = tmp_path / "hosts.yaml"
    catalog.write_text(
        "apis:\n  - {provider: x, api: openai, hosts: [api.new-ai.example, '*-x.example']}\n"
        "consumer_apps:\n  - {name: c, hosts: [chat.new-ai.example], handling: observe}\n"
    )
    fake = start_fake(tmp_path / "tls", tmp_path / "log", "--hosts-yaml", str(catalog))
    try:
        for sni in ("api.new-ai.example", "chat.new-ai.example", "api.openai.com"):
            with (
                socket.create_connection(("127.0.0.1", fake.port), timeout=5) as raw,
                fake.context().wrap_socket(raw, server_hostname=sni),
            ):
                pass
    finally:
        assert stop_fake(fake) == 0


def test_certificate_does_not_cover_other_hosts(fake):
    context = ssl.create_default_context(cafile=str(fake.tls_dir / "ca.pem"))
    with (
        socket.create_connection(("127.0.0.1", fake.port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="example.com")


# --- OpenAI ----------------------------------------------------------------------------------


def test_openai_chat_json(oai):
    r = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Say hello to me"}]},
        ],
    )
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-")
    assert r.model == "gpt-4o-mini"
    assert r.choices[0].message.content == "Hello from the fake gpt-4o-mini. How can I help?"
    assert r.choices[0].message.role == "assistant" and r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens == 2 + 4
    assert r.usage.completion_tokens == DEFAULT_ANSWER_WORDS
    assert r.usage.total_tokens == 6 + DEFAULT_ANSWER_WORDS
    assert r.usage.prompt_tokens_details.cached_tokens == 0
    assert r.usage.completion_tokens_details.reasoning_tokens == 0
    assert r.system_fingerprint


def test_openai_chat_stream_without_usage(oai):
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    contents = [c.choices[0].delta.content for c in chunks[1:] if c.choices[0].delta.content]
    assert len(contents) == DEFAULT_ANSWER_WORDS
    assert "".join(contents) == "Hello from the fake gpt-4o. How can I help?"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None and c.choices for c in chunks)


def test_openai_chat_stream_with_usage(oai):
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.prompt_tokens == 3
    assert last.usage.completion_tokens == DEFAULT_ANSWER_WORDS
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks[:-1])


def test_openai_chat_raw_stream_ends_with_done(fake):
    status, headers, raw = fake.post(
        "/v1/chat/completions",
        {"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]},
    )
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert headers["transfer-encoding"] == "chunked"
    assert sse_events(raw)[-1] == (None, "[DONE]")


def test_openai_responses_json(oai):
    r = oai.responses.create(model="gpt-4.1", instructions="Be kind.", input="What is up")
    assert r.object == "response" and r.status == "completed"
    assert r.output_text == "Hello from the fake gpt-4.1. How can I help?"
    assert r.output[0].type == "message" and r.output[0].content[0].annotations == []
    assert r.usage.input_tokens == 5
    assert r.usage.output_tokens == DEFAULT_ANSWER_WORDS
    assert r.usage.total_tokens == 5 + DEFAULT_ANSWER_WORDS
    assert r.usage.input_tokens_details.cached_tokens == 0


def test_openai_responses_stream(oai):
    events = list(
        oai.responses.create(
            model="gpt-4.1",
            input=[{"role": "user", "content": [{"type": "input_text", "text": "a b"}]}],
            stream=True,
        )
    )
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert types.count("response.output_text.delta") == DEFAULT_ANSWER_WORDS
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == text
    final = events[-1].response
    assert final.status == "completed" and final.output_text == text
    assert final.usage.input_tokens == 2 and final.usage.output_tokens == DEFAULT_ANSWER_WORDS


def test_openai_responses_stream_event_names(fake):
    _, _, raw = fake.post("/v1/responses", {"model": "m", "input": "x", "stream": True})
    events = sse_events(raw)
    assert all(name == json.loads(data)["type"] for name, data in events)
    assert events[-1][0] == "response.completed"
    assert events[-2][0] == "response.output_item.done"


def test_openai_completions_and_embeddings(oai):
    r = oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once upon a time")
    assert r.choices[0].text.startswith("Hello from the fake")
    assert r.usage.prompt_tokens == 4 and r.usage.completion_tokens == DEFAULT_ANSWER_WORDS

    e = oai.embeddings.create(model="text-embedding-3-small", input=["a b", "c"])  # base64
    assert [d.index for d in e.data] == [0, 1]
    assert all(len(d.embedding) == 8 for d in e.data)
    assert e.usage.prompt_tokens == 3 and e.usage.total_tokens == 3
    again = oai.embeddings.create(
        model="text-embedding-3-small", input="a b", encoding_format="float"
    )
    assert again.data[0].embedding == pytest.approx(e.data[0].embedding, abs=1e-5)


def test_openai_compatible_paths(fake):
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
    for path, host in [
        ("/openai/v1/chat/completions", "api.groq.com"),
        ("/api/v1/chat/completions", "openrouter.ai"),
        ("/inference/v1/chat/completions", "api.fireworks.ai"),
        ("/chat/completions", "api.perplexity.ai"),
        ("/v1beta/openai/chat/completions", "generativelanguage.googleapis.com"),
        ("/compatibility/v1/chat/completions", "api.cohere.ai"),
    ]:
        status, _, raw = fake.post(path, body, host=host)
        assert status == 200, path
        assert json.loads(raw)["object"] == "chat.completion"


def test_azure_openai_deployment(fake):
    client = openai.AzureOpenAI(
        azure_endpoint=fake.url,
        api_version="2024-10-21",
        api_key=API_KEY,
        http_client=httpx.Client(verify=fake.context()),
        max_retries=0,
    )
    r = client.chat.completions.create(
        model="my-gpt4o", messages=[{"role": "user", "content": "hi"}]
    )
    assert r.model == "gpt-4o-mini-2024-07-18"  # the deployment's model, as Azure answers
    assert r.choices[0].message.content.startswith("Hello from the fake gpt-4o-mini")
    assert r.model_extra["prompt_filter_results"][0]["prompt_index"] == 0
    chunks = list(
        client.chat.completions.create(
            model="my-gpt4o", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert chunks[0].choices == []  # Azure's opening prompt-filter chunk
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake gpt-4o-mini-2024-07-18. How can I help?"


def test_echo_marker_and_header(oai):
    prompt = "My name is Ada [[fake:echo]]"
    r = oai.chat.completions.create(
        model="m",
        messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": prompt}],
    )
    assert r.choices[0].message.content == prompt
    assert r.usage.completion_tokens == len(prompt.split())
    r = oai.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "first"}, {"role": "user", "content": "second"}],
        extra_headers={"x-fake-behavior": "echo"},
    )
    assert r.choices[0].message.content == "first\nsecond"


def test_chunks_behaviour(oai):
    chunks = list(
        oai.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
            extra_headers={"x-fake-behavior": "chunks=20"},
        )
    )
    contents = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(contents) == 20


def test_openai_rate_limit_error(oai):
    with pytest.raises(openai.RateLimitError) as err:
        oai.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x [[fake:error=429]]"}]
        )
    assert err.value.status_code == 429
    assert err.value.response.headers["retry-after"] == "1"
    body = err.value.body
    assert set(body) == {"message", "type", "param", "code"}
    assert body["code"] == "rate_limit_exceeded"


def test_openai_server_error(oai):
    with pytest.raises(openai.InternalServerError) as err:
        oai.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"x-fake-behavior": "error=503"},
        )
    assert err.value.status_code == 503 and err.value.body["type"] == "server_error"


def test_slow_stream_arrives_event_by_event(oai):
    started = time.monotonic()
    arrivals = []
    for chunk in oai.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": "x"}],
        stream=True,
        extra_headers={"x-fake-behavior": "slow=100, chunks=3"},
    ):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 3
    assert arrivals[0] >= 0.1  # waited before answering
    assert arrivals[-1] - arrivals[0] >= 0.18  # and between events: each was flushed on its own


def test_break_drops_the_stream_midway(oai):
    got = []
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        for chunk in oai.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "x [[fake:break]]"}],
            stream=True,
            stream_options={"include_usage": True},
        ):
            got.append(chunk)
    assert got, "some events arrive before the break"
    assert all(c.usage is None for c in got)


def test_unknown_behaviour_is_a_400(fake):
    status, _, raw = fake.post(
        "/v1/chat/completions",
        {"model": "m", "messages": [{"role": "user", "content": "x"}]},
        headers={"x-fake-behavior": "explode"},
    )
    assert status == 400 and "explode" in json.loads(raw)["error"]["message"]


# --- Anthropic -------------------------------------------------------------------------------


def test_anthropic_json(claude):
    m = claude.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        system="You are terse.",
        messages=[{"role": "user", "content": "Tell me a joke"}],
    )
    assert m.id.startswith("msg_") and m.type == "message" and m.role == "assistant"
    assert m.content[0].type == "text"
    assert m.content[0].text == "Hello from the fake claude-sonnet-4-6. How can I help?"
    assert m.stop_reason == "end_turn" and m.stop_sequence is None
    assert m.usage.input_tokens == 3 + 4
    assert m.usage.output_tokens == DEFAULT_ANSWER_WORDS
    assert m.usage.cache_read_input_tokens == 0 and m.usage.cache_creation_input_tokens == 0


def test_anthropic_stream(claude):
    with claude.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=100,
        messages=[{"role": "user", "content": [{"type": "text", "text": "one two"}]}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from the fake claude-haiku-4-5. How can I help?"
    assert final.usage.input_tokens == 2
    assert final.usage.output_tokens == DEFAULT_ANSWER_WORDS
    assert final.stop_reason == "end_turn"


def test_anthropic_raw_stream_events(fake):
    _, _, raw = fake.post(
        "/v1/messages",
        {
            "model": "c",
            "max_tokens": 5,
            "stream": True,
            "messages": [{"role": "user", "content": "x"}],
        },
    )
    events = sse_events(raw)
    names = [n for n, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start = json.loads(events[0][1])["message"]["usage"]
    assert start["input_tokens"] == 1 and start["output_tokens"] == 1
    delta = json.loads(events[-2][1])
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["output_tokens"] == DEFAULT_ANSWER_WORDS


def test_anthropic_errors(claude, fake):
    with pytest.raises(anthropic.RateLimitError) as err:
        claude.messages.create(
            model="c", max_tokens=5, messages=[{"role": "user", "content": "[[fake:error=429]]"}]
        )
    assert err.value.body["type"] == "error"
    assert err.value.body["error"]["type"] == "rate_limit_error"
    assert err.value.response.headers["retry-after"] == "1"
    status, _, raw = fake.post("/v1/messages", {"model": "c", "messages": []})
    assert status == 400 and "max_tokens" in json.loads(raw)["error"]["message"]
    assert json.loads(raw)["error"]["type"] == "invalid_request_error"
    status, _, raw = fake.request("GET", "/v1/nothing", host="api.anthropic.com")
    assert status == 404 and json.loads(raw)["error"]["type"] == "not_found_error"


def test_anthropic_on_vertex(fake):
    path = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514"
    body = {
        "anthropic_version": "vertex-2023-10-16",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    status, _, raw = fake.post(path + ":rawPredict", body)
    assert status == 200 and json.loads(raw)["model"] == "claude-sonnet-4@20250514"
    status, headers, raw = fake.post(path + ":streamRawPredict", body)
    assert headers["content-type"].startswith("text/event-stream")
    assert sse_events(raw)[-1][0] == "message_stop"


# --- Gemini ----------------------------------------------------------------------------------

GEMINI_BODY = {
    "systemInstruction": {"parts": [{"text": "be nice"}]},
    "contents": [{"role": "user", "parts": [{"text": "what is the time"}]}],
}


def test_gemini_json(fake):
    status, _, raw = fake.post("/v1beta/models/gemini-2.5-flash:generateContent", GEMINI_BODY)
    r = json.loads(raw)
    assert status == 200
    candidate = r["candidates"][0]
    assert candidate["content"]["role"] == "model" and candidate["finishReason"] == "STOP"
    assert candidate["content"]["parts"][0]["text"].startswith(
        "Hello from the fake gemini-2.5-flash"
    )
    assert r["usageMetadata"]["promptTokenCount"] == 6
    assert r["usageMetadata"]["candidatesTokenCount"] == DEFAULT_ANSWER_WORDS
    assert r["usageMetadata"]["totalTokenCount"] == 6 + DEFAULT_ANSWER_WORDS
    assert r["modelVersion"] == "gemini-2.5-flash" and r["responseId"]


def test_gemini_sse_stream(fake):
    status, headers, raw = fake.post(
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=AIzaSECRET", GEMINI_BODY
    )
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    chunks = [json.loads(data) for _, data in sse_events(raw, b"\r\n\r\n")]
    assert len(chunks) == DEFAULT_ANSWER_WORDS
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert text == "Hello from the fake gemini-2.5-flash. How can I help?"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert "finishReason" not in chunks[0]["candidates"][0]
    assert chunks[-1]["usageMetadata"]["candidatesTokenCount"] == DEFAULT_ANSWER_WORDS
    assert all(c["usageMetadata"]["promptTokenCount"] == 6 for c in chunks)


def test_gemini_json_array_stream_and_vertex(fake):
    path = "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash"
    status, headers, raw = fake.post(path + ":streamGenerateContent", GEMINI_BODY)
    assert status == 200 and headers["content-type"].startswith("application/json")
    chunks = json.loads(raw)
    assert isinstance(chunks, list) and len(chunks) == DEFAULT_ANSWER_WORDS
    assert "createTime" in chunks[0]
    status, _, raw = fake.post(path + ":generateContent", GEMINI_BODY)
    assert json.loads(raw)["usageMetadata"]["promptTokenCount"] == 6


def test_gemini_errors(fake):
    status, _, raw = fake.post(
        "/v1beta/models/g:generateContent", GEMINI_BODY, headers={"x-fake-behavior": "error=429"}
    )
    assert status == 429
    assert json.loads(raw) == {
        "error": {
            "code": 429,
            "message": json.loads(raw)["error"]["message"],
            "status": "RESOURCE_EXHAUSTED",
        }
    }
    status, _, raw = fake.post("/v1beta/models/g:generateContent", {"nothing": 1})
    assert status == 400 and json.loads(raw)["error"]["status"] == "INVALID_ARGUMENT"
    status, _, raw = fake.post("/v1beta/models/g:embedContent", GEMINI_BODY)
    assert status == 404 and json.loads(raw)["error"]["status"] == "NOT_FOUND"


# --- Bedrock ---------------------------------------------------------------------------------

CONVERSE_BODY = {
    "system": [{"text": "be brief"}],
    "messages": [{"role": "user", "content": [{"text": "hello there"}]}],
}
BEDROCK_HOST = "bedrock-runtime.us-east-1.amazonaws.com"


def test_bedrock_converse(fake):
    status, _, raw = fake.post(
        "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse",
        CONVERSE_BODY,
        host=BEDROCK_HOST,
    )
    r = json.loads(raw)
    assert status == 200
    assert r["output"]["message"]["role"] == "assistant"
    assert r["output"]["message"]["content"][0]["text"].startswith(
        "Hello from the fake anthropic.claude-3-5-haiku-20241022-v1:0."
    )
    assert r["stopReason"] == "end_turn"
    assert r["usage"] == {"inputTokens": 4, "outputTokens": DEFAULT_ANSWER_WORDS, "totalTokens": 13}
    assert r["metrics"]["latencyMs"] > 0


def test_bedrock_converse_stream_frames(fake):
    status, headers, raw = fake.post(
        "/model/us.amazon.nova-lite-v1%3A0/converse-stream", CONVERSE_BODY, host=BEDROCK_HOST
    )
    assert status == 200 and headers["content-type"] == "application/vnd.amazon.eventstream"
    frames = decode_event_stream(raw)
    types = [h[":event-type"] for h, _ in frames]
    assert types[0] == "messageStart"
    assert types[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    assert types.count("contentBlockDelta") == DEFAULT_ANSWER_WORDS
    assert all(h[":message-type"] == "event" for h, _ in frames)
    assert all(h[":content-type"] == "application/json" for h, _ in frames)
    payloads = [json.loads(p) for _, p in frames]
    text = "".join(p["delta"]["text"] for p in payloads if "delta" in p)
    assert text == "Hello from the fake us.amazon.nova-lite-v1:0. How can I help?"
    assert payloads[-2]["stopReason"] == "end_turn"
    assert payloads[-1]["usage"] == {
        "inputTokens": 4,
        "outputTokens": DEFAULT_ANSWER_WORDS,
        "totalTokens": 4 + DEFAULT_ANSWER_WORDS,
    }


INVOKE_BODY = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": "hi you"}],
}


def test_bedrock_invoke_anthropic(fake):
    status, headers, raw = fake.post(
        "/model/anthropic.claude-sonnet-4-20250514-v1%3A0/invoke", INVOKE_BODY, host=BEDROCK_HOST
    )
    r = json.loads(raw)
    assert status == 200 and r["type"] == "message"
    assert r["usage"]["input_tokens"] == 2
    assert headers["x-amzn-bedrock-input-token-count"] == "2"
    assert headers["x-amzn-bedrock-output-token-count"] == str(DEFAULT_ANSWER_WORDS)


def test_bedrock_invoke_with_response_stream(fake):
    status, _, raw = fake.post(
        "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/invoke-with-response-stream",
        INVOKE_BODY,
        host=BEDROCK_HOST,
    )
    assert status == 200
    frames = decode_event_stream(raw)
    assert all(h[":event-type"] == "chunk" for h, _ in frames)
    events = [json.loads(base64.b64decode(json.loads(p)["bytes"])) for _, p in frames]
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    metrics = events[-1]["amazon-bedrock-invocationMetrics"]
    assert metrics["inputTokenCount"] == 2 and metrics["outputTokenCount"] == DEFAULT_ANSWER_WORDS


def test_bedrock_errors(fake):
    status, headers, raw = fake.post(
        "/model/m/converse", CONVERSE_BODY, headers={"x-fake-behavior": "error=429"}
    )
    assert status == 429 and headers["x-amzn-errortype"].startswith("ThrottlingException")
    assert set(json.loads(raw)) == {"message"}
    status, headers, _ = fake.post("/model/meta.llama3-70b-instruct-v1%3A0/invoke", {"prompt": "x"})
    assert status == 400 and headers["x-amzn-errortype"].startswith("ValidationException")
    status, headers, _ = fake.post("/model/m/unknown", {}, host=BEDROCK_HOST)
    assert status == 404 and "x-amzn-errortype" in headers


# --- Cohere ----------------------------------------------------------------------------------


def test_cohere_chat_json_and_stream(fake):
    body = {"model": "command-a-03-2025", "messages": [{"role": "user", "content": "hi there"}]}
    status, _, raw = fake.post("/v2/chat", body, host="api.cohere.com")
    r = json.loads(raw)
    assert status == 200 and r["finish_reason"] == "COMPLETE"
    assert r["message"]["content"][0]["type"] == "text"
    assert r["usage"]["tokens"] == {"input_tokens": 2, "output_tokens": DEFAULT_ANSWER_WORDS}
    assert r["usage"]["billed_units"] == r["usage"]["tokens"]

    _, _, raw = fake.post("/v2/chat", {**body, "stream": True}, host="api.cohere.com")
    events = [(n, json.loads(d)) for n, d in sse_events(raw)]
    names = [n for n, _ in events]
    assert names[:2] == ["message-start", "content-start"] and names[-2:] == [
        "content-end",
        "message-end",
    ]
    text = "".join(
        d["delta"]["message"]["content"]["text"] for n, d in events if n == "content-delta"
    )
    assert text == r["message"]["content"][0]["text"]
    assert events[-1][1]["delta"]["usage"]["tokens"]["output_tokens"] == DEFAULT_ANSWER_WORDS

    status, _, raw = fake.post("/v2/chat", body, headers={"x-fake-behavior": "error=500"})
    assert status == 500 and set(json.loads(raw)) == {"message"}


# --- the request log and process behaviour ---------------------------------------------------


def test_request_log_records_and_clears(fake):
    assert fake.request("DELETE", "/_fake/requests")[0] == 200
    fake.post(
        "/v1/chat/completions",
        {"model": "m", "messages": [{"role": "user", "content": "logged"}]},
        headers={"authorization": f"Bearer {API_KEY}"},
        host="api.openai.com",
    )
    fake.post("/v1/messages?beta=true", {"bad": 1}, host="api.anthropic.com")
    status, _, raw = fake.request("GET", "/_fake/requests", host="api.mistral.ai")
    log = json.loads(raw)
    assert status == 200 and len(log) == 2
    first = log[0]
    assert first["method"] == "POST" and first["host"] == "api.openai.com"
    assert first["path"] == "/v1/chat/completions"
    assert first["json"]["messages"][0]["content"] == "logged"
    assert first["headers"]["authorization"] == f"Bearer {API_KEY}"
    assert log[1]["path"] == "/v1/messages?beta=true"
    fake.request("DELETE", "/_fake/requests")
    assert json.loads(fake.request("GET", "/_fake/requests")[2]) == []


def test_unknown_paths_answer_404_in_the_family_shape(fake):
    status, _, raw = fake.request("GET", "/v1/chat/completions", host="api.openai.com")
    assert status == 404 and json.loads(raw)["error"]["message"].startswith("Invalid URL (GET")
    status, _, raw = fake.post("/v2/embed", {}, host="api.cohere.com")
    assert status == 404 and "message" in json.loads(raw)


def test_logs_never_show_credentials(fake, oai):
    oai.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    fake.post("/v1beta/models/g:generateContent?key=AIzaSECRETKEY", GEMINI_BODY)
    log = fake.log.read_text()
    assert "POST" in log and "/v1/chat/completions" in log
    assert API_KEY not in log and "AIzaSECRETKEY" not in log
    assert "key=REDACTED" in log


def test_restart_reuses_the_ca_and_sigint_exits_cleanly(tmp_path):
    first = start_fake(tmp_path / "tls", tmp_path / "one.log")
    ca = (tmp_path / "tls" / "ca.pem").read_bytes()
    assert stop_fake(first, signal.SIGINT) == 0
    second = start_fake(tmp_path / "tls", tmp_path / "two.log")
    try:
        assert (tmp_path / "tls" / "ca.pem").read_bytes() == ca
        status, _, _ = second.post(
            "/v1/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "x"}]}
        )
        assert status == 200
    finally:
        assert stop_fake(second) == 0
    assert oct((tmp_path / "tls" / "ca-key.pem").stat().st_mode & 0o777) == "0o600"


# --- helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["Hello there  you", "  lead", "one", "", "a\nb\n"])
def test_word_pieces_join_back(text):
    assert "".join(common.word_pieces(text)) == text


def test_behaviour_from_header_and_markers():
    b = common.parse_behavior("slow=5; echo", ["hi [[fake:error=503]]", "[[fake:break chunks=2]]"])
    assert (b.slow_ms, b.echo, b.error, b.break_stream, b.chunks) == (5, True, 503, True, 2)
    with pytest.raises(common.FakeError):
        common.parse_behavior("error=200", [])
