"""The generic path and the full-body walk: every string and key is read, and written back."""

from __future__ import annotations

import base64
import json

import pytest

from tollhouse.exchange import Exchange, Role
from tollhouse.providers import ADAPTERS
from tollhouse.providers.base import ParseError, Request
from tollhouse.providers.envelope import (
    AmbiguousPath,
    apply_envelope,
    envelope_segments,
    normalize_path,
)
from tollhouse.providers.generic import GenericAdapter
from tollhouse.providers.walk import cover, decode_base64_text

KEY = "AKIAQWERTYUIOPASDFGH"


def generic(body: bytes, content_type: str = "application/json", path: str = "/v1/x") -> Exchange:
    adapter = GenericAdapter(ADAPTERS["openai"], lambda ids: "decoded " + " ".join(map(str, ids)))
    request = Request("POST", "api.openai.com", path, {"content-type": content_type}, body)
    return adapter.parse("openai", request)


def rewrite(exchange: Exchange, old: str, new: str) -> bytes:
    """Replace ``old`` by ``new`` in every segment, as DLP would, and render."""
    for i, segment in enumerate(exchange.segments):
        if old in segment.text:
            exchange.set_text(i, segment.text.replace(old, new))
    adapter = GenericAdapter(ADAPTERS["openai"])
    return adapter.render(exchange).body


def test_every_string_and_key_of_an_unknown_json_endpoint_is_a_segment():
    body = {"name": "asst", "tools": [{"desc": f"uses {KEY}"}], KEY: {"nested": [1, "x"]}}
    exchange = generic(json.dumps(body).encode())
    texts = [(s.text, s.form) for s in exchange.segments]
    assert (f"uses {KEY}", "text") in texts
    assert (KEY, "key") in texts
    assert ("x", "text") in texts
    assert all(s.role == Role.FIELD for s in exchange.segments)


def test_a_rewritten_key_and_value_are_written_back_and_the_rest_kept():
    body = {"a": {KEY: {"inner": f"v {KEY}"}}, "z": 2}
    exchange = generic(json.dumps(body).encode())
    out = json.loads(rewrite(exchange, KEY, "[AWS_KEY_1]"))
    assert out == {"a": {"[AWS_KEY_1]": {"inner": "v [AWS_KEY_1]"}}, "z": 2}


def test_jsonl_lines_are_walked_and_rewritten_line_by_line():
    lines = [{"custom_id": "1", "body": {"messages": [{"content": f"k={KEY}"}]}}, {"x": "y"}]
    raw = ("\n".join(json.dumps(line) for line in lines) + "\n").encode()
    exchange = generic(raw, "application/jsonl")
    out = rewrite(exchange, KEY, "[K]")
    assert KEY not in out.decode()
    assert [json.loads(line) for line in out.decode().splitlines()][1] == {"x": "y"}
    assert out.endswith(b"\n")


def test_form_bodies_are_read_and_rewritten():
    exchange = generic(f"purpose=batch&note={KEY}".encode(), "application/x-www-form-urlencoded")
    assert KEY.encode() not in rewrite(exchange, KEY, "[K]")


def test_multipart_text_parts_are_scanned_and_binary_parts_listed_unreadable():
    boundary = "XyZ"
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{KEY}.jsonl"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
            f'{{"custom_id":"a","body":{{"input":"{KEY}"}}}}\n\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="img"; filename="a.png"\r\n'
            f"Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    exchange = generic(body, f"multipart/form-data; boundary={boundary}")
    assert exchange.unreadable == ["multipart part 3 (image/png)"]
    out = rewrite(exchange, KEY, "[K]")
    assert KEY.encode() not in out
    assert png in out  # the binary part goes out as it came
    assert b'filename="[K].jsonl"' in out


@pytest.mark.parametrize(
    "body",
    [
        b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--B--\r\nsmuggled",
        b"preamble\r\n--B\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--B--\r\n",
        b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n",
        b"--B\r\nContent-Disposition: form-data; name=a\r\nContent-Transfer-Encoding: base64"
        b"\r\n\r\neA==\r\n--B--\r\n",
    ],
    ids=["epilogue", "preamble", "unclosed", "transfer-encoding"],
)
def test_ambiguous_multipart_bodies_are_refused(body):
    with pytest.raises(ParseError):
        generic(body, "multipart/form-data; boundary=B")


def test_binary_bodies_are_unreadable_and_text_labelled_binary_is_read():
    assert generic(b"\x00\x01\xff\xfe" * 50, "audio/mpeg").unreadable == [
        "a body of type audio/mpeg"
    ]
    exchange = generic(f"notes: {KEY}".encode(), "application/octet-stream")
    assert exchange.unreadable == []
    assert any(KEY in s.text for s in exchange.segments)


def test_a_media_type_that_is_not_plain_is_never_quoted():
    exchange = generic(b"\xff\xfe\x00" * 10, f"x/{KEY}; charset=<script>")
    assert KEY not in exchange.unreadable[0]


def test_base64_text_is_scanned_decoded_and_written_back_encoded():
    secret = base64.b64encode(f"config: aws_key={KEY}".encode()).decode()
    body = {"contents": [{"inlineData": {"mimeType": "image/png", "data": secret}}]}
    exchange = generic(json.dumps(body).encode())
    decoded = [s for s in exchange.segments if s.form == "base64"]
    assert decoded and KEY in decoded[0].text
    out = json.loads(rewrite(exchange, KEY, "[K]"))
    data = out["contents"][0]["inlineData"]["data"]
    assert base64.b64decode(data).decode() == "config: aws_key=[K]"


def test_a_data_url_keeps_its_prefix_and_binary_base64_is_not_text():
    url = "data:text/plain;base64," + base64.b64encode(f"k {KEY}".encode()).decode()
    exchange = generic(json.dumps({"file": url}).encode())
    out = json.loads(rewrite(exchange, KEY, "[K]"))
    assert out["file"].startswith("data:text/plain;base64,")
    assert decode_base64_text(base64.b64encode(bytes(range(200))).decode()) is None


def test_token_id_arrays_are_read_with_the_decoder():
    exchange = generic(json.dumps({"model": "m", "input": [[1, 2, 3]]}).encode())
    tokens = [s for s in exchange.segments if s.form == "tokens"]
    assert tokens[0].text == "decoded 1 2 3"
    exchange.set_text(exchange.segments.index(tokens[0]), "redacted")
    out = json.loads(GenericAdapter(ADAPTERS["openai"]).render(exchange).body)
    assert out["input"] == ["redacted"]


def test_token_ids_the_encoding_lacks_are_refused():
    def refuse(ids):
        raise ValueError("no such id")

    adapter = GenericAdapter(ADAPTERS["openai"], refuse)
    request = Request("POST", "h", "/v1/embeddings", {}, b'{"input": [999999999]}')
    with pytest.raises(ParseError, match="token ids"):
        adapter.parse("openai", request)


def test_duplicate_keys_are_refused_on_the_generic_path():
    with pytest.raises(ParseError, match="duplicate"):
        generic(b'{"a": "x", "a": "y"}')


def test_cover_adds_what_a_known_adapter_did_not_read():
    raw = json.dumps(
        {
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "description": KEY}}],
            "metadata": {KEY: "v"},
        }
    ).encode()
    request = Request("POST", "api.openai.com", "/v1/chat/completions", {}, raw)
    exchange = ADAPTERS["openai"].parse("openai", request)
    before = len(exchange.segments)
    cover(exchange)
    added = exchange.segments[before:]
    assert any(s.text == KEY and s.form == "text" for s in added)
    assert any(s.text == KEY and s.form == "key" for s in added)
    # what the adapter read keeps its role and is not read twice
    assert [s.text for s in exchange.segments].count("hi") == 1


@pytest.mark.parametrize(
    "path",
    [
        "//v1/files",
        "/v1/./files",
        "/v1/../v1/files",
        "/v1/%2e%2e/files",
        "/v1/%252e",
        "/a\\b",
        "/v1/fi%00les",
        "v1/files",
    ],
)
def test_ambiguous_paths_are_refused(path):
    with pytest.raises(AmbiguousPath):
        normalize_path(path)


def test_plain_and_encoded_paths_normalize():
    assert normalize_path("/v1/files?x=1") == "/v1/files"
    assert normalize_path("/model/anthropic.claude-v2%3A1/converse") == (
        "/model/anthropic.claude-v2:1/converse"
    )


def test_envelope_reads_path_query_and_headers_but_never_credentials():
    headers = [("authorization", f"Bearer {KEY}"), ("x-note", f"n {KEY}"), ("cookie", "s=1")]
    segments = envelope_segments(f"/v1/files/{KEY}?key=GEMKEY&q={KEY}", headers)
    texts = [s.text for s in segments]
    assert f"/v1/files/{KEY}" in texts and f"n {KEY}" in texts and KEY in texts
    assert "GEMKEY" not in texts and f"Bearer {KEY}" not in texts
    assert "s=1" in texts  # a cookie is no credential of an API
    session = envelope_segments("/", headers, frozenset({"cookie"}))
    assert "s=1" not in [s.text for s in session]


def test_envelope_rewrites_are_written_back():
    headers = [("x-note", f"n {KEY}")]
    path = f"/v1/files/{KEY}?q={KEY}&key=GEMKEY"
    exchange = Exchange("openai", "openai", "unknown", path)
    exchange.segments = envelope_segments(path, headers)
    for i, segment in enumerate(exchange.segments):
        exchange.set_text(i, segment.text.replace(KEY, "[K]"))
    envelope = apply_envelope(exchange, path, headers)
    assert envelope is not None
    assert KEY not in envelope.path and "key=GEMKEY" in envelope.path
    assert envelope.headers == [("x-note", "n [K]")]


def test_binary_base64_is_not_scanned_as_text():
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8).decode()
    body = {
        "model": "gpt-4o",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}
                ],
            }
        ],
    }
    request = Request(
        "POST", "api.openai.com", "/v1/chat/completions", {}, json.dumps(body).encode()
    )
    exchange = ADAPTERS["openai"].parse("openai", request)
    cover(exchange)
    assert all(png not in s.text for s in exchange.segments)
    # on an endpoint no adapter knows, the same value is listed for the unscannable policy
    assert generic(json.dumps({"image": png}).encode()).unreadable == ["1 binary base64 value(s)"]


def test_text_sent_as_an_image_is_read_whatever_the_declared_type():
    text_as_png = base64.b64encode(f"notes: {KEY}".encode()).decode()
    url = f"data:image/png;base64,{text_as_png}"
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}
        ],
    }
    raw = json.dumps(body).encode()
    exchange = ADAPTERS["openai"].parse(
        "openai", Request("POST", "h", "/v1/chat/completions", {}, raw)
    )
    cover(exchange)
    assert any(s.form == "base64" and KEY in s.text for s in exchange.segments)


def test_utf8_that_is_mostly_control_characters_is_binary():
    exchange = generic(b"\x00" * 70_000 + KEY.encode(), "application/octet-stream")
    assert exchange.unreadable == ["a body of type application/octet-stream"]
