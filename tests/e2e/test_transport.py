"""Transport corners end to end: a body the gateway could read one way and the provider another is
refused with a provider-shaped 400 and never forwarded; one it can read in full is forwarded as it
was scanned. No client is left waiting, and no planted value reaches the audit log or the log."""

from __future__ import annotations

import base64
import gzip
import json
import secrets
import socket
import ssl
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import pytest

from tests.e2e.conftest import FakeProvider, Gateway, start_gateway, stop

pytestmark = pytest.mark.e2e

HOST = "api.openai.com"
PATH = "/v1/chat/completions"
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def planted() -> str:
    """A fresh AWS access key id (the DLP's format), unique to one test."""
    return "AKIA" + "".join(secrets.choice(BASE32) for _ in range(16))


def chat(text: str) -> bytes:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    return json.dumps(body).encode()


def tunnel(gateway: Gateway, host: str = HOST, alpn: str = "http/1.1") -> ssl.SSLSocket:
    """A TLS connection to ``host`` through the gateway's CONNECT, as a client would open it."""
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=15)
    sock.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "the gateway closed the CONNECT"
        head += chunk
    assert head.startswith(b"HTTP/1.1 200"), head
    context = ssl.create_default_context(cafile=str(gateway.ca))
    context.set_alpn_protocols([alpn])
    return context.wrap_socket(sock, server_hostname=host)


def http1(gateway: Gateway, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one raw HTTP/1.1 request; the status, headers and body of the answer. A client left
    unanswered fails here with a timeout."""
    with tunnel(gateway) as conn:
        conn.sendall(raw)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            assert chunk, f"connection closed without an answer: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
        }
        while len(body) < int(headers.get("content-length", "0")):
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return int(lines[0].split()[1]), headers, body


def post(
    body: bytes, marker: str, *, chunked: bool = False, trailer: bytes = b"", **headers: str
) -> bytes:
    """A raw POST to the chat endpoint; ``marker`` in a header finds it at the provider."""
    fields = {
        "Host": HOST,
        "Authorization": "Bearer sk-test-not-real",
        "Content-Type": "application/json",
        "X-Test-Marker": marker,
        **{k.replace("_", "-").title(): v for k, v in headers.items()},
    }
    if chunked:
        fields["Transfer-Encoding"] = "chunked"
        payload = b"%x\r\n%s\r\n0\r\n%s\r\n" % (len(body), body, trailer)
    else:
        fields["Content-Length"] = str(len(body))
        payload = body
    head = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return f"POST {PATH} HTTP/1.1\r\n{head}\r\n".encode() + payload


def received(fake: FakeProvider, marker: str) -> list[dict]:
    return [
        r
        for r in fake.requests()
        if r["headers"].get("x-test-marker") == marker or marker in r["body"]
    ]


def assert_nowhere(gateway: Gateway, fake: FakeProvider, secret: str) -> None:
    """The planted value is nowhere at the provider, in the audit tables or in the log."""
    for r in fake.requests():
        assert secret not in json.dumps(r)
    for table in ("exchanges", "events", "findings"):
        rows = gateway.audit(f"select * from {table}", expect=0)
        assert secret not in json.dumps(rows, default=str)
    assert secret not in Path(gateway.log).read_text()


def refusal_row(gateway: Gateway, since: str, reason: str) -> dict:
    rows = gateway.audit(
        "select status, decision, reason, request_body from exchanges "
        f"where started_at >= TIMESTAMPTZ '{since}' and reason like 'wire: {reason}%'"
    )
    return rows[0]


def assert_refused(status: int, headers: dict[str, str], body: bytes, reason: str) -> None:
    """A 400 in OpenAI's error shape naming why, marked as the gateway's own answer."""
    assert status == 400, body
    assert headers["x-tollhouse-decision"] == "block; stage=wire"
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error"
    assert reason in error["message"] and "not sent" in error["message"]


def now() -> str:
    return datetime.now(UTC).isoformat()


# --- refused: bodies two readers could read differently ------------------------------------


def test_http1_request_trailers_are_refused_not_left_waiting(gateway, fake_provider):
    secret, marker, since = planted(), secrets.token_hex(8), now()
    raw = post(chat("hello"), marker, chunked=True, trailer=f"X-Note: {secret}\r\n".encode())
    status, headers, body = http1(gateway, raw)
    assert_refused(status, headers, body, "request trailers are not accepted")
    assert received(fake_provider, marker) == []
    row = refusal_row(gateway, since, "request trailers")
    assert (row["status"], row["decision"]) == (400, "block")
    assert_nowhere(gateway, fake_provider, secret)


def test_a_chunked_request_without_trailers_still_passes(gateway, fake_provider):
    marker = secrets.token_hex(8)
    status, _, body = http1(gateway, post(chat(f"[[fake:echo]] {marker}"), marker, chunked=True))
    assert status == 200, body
    assert len(received(fake_provider, marker)) == 1


def test_deflate_with_trailing_bytes_is_refused(gateway, fake_provider):
    secret, marker, since = planted(), secrets.token_hex(8), now()
    raw = zlib.compress(chat("harmless")) + f"key {secret}".encode()
    status, headers, body = http1(gateway, post(raw, marker, Content_Encoding="deflate"))
    assert_refused(status, headers, body, "trailing bytes after the deflate body")
    assert received(fake_provider, marker) == []
    refusal_row(gateway, since, "trailing bytes after the deflate body")
    assert_nowhere(gateway, fake_provider, secret)


def test_gzip_with_trailing_bytes_is_refused(gateway, fake_provider):
    secret, marker = planted(), secrets.token_hex(8)
    raw = gzip.compress(chat("harmless")) + zlib.compress(f"key {secret}".encode())
    status, headers, body = http1(gateway, post(raw, marker, Content_Encoding="gzip"))
    assert_refused(status, headers, body, "trailing bytes after the gzip body")
    assert received(fake_provider, marker) == []
    assert_nowhere(gateway, fake_provider, secret)


def utf7(text: str) -> str:
    """``text`` in UTF-7's shifted form: ASCII letters as base64 of UTF-16, unreadable to a
    scanner that reads UTF-8, plain to a reader that honours the charset."""
    return "+" + base64.b64encode(text.encode("utf-16-be")).decode().rstrip("=") + "-"


def test_a_utf7_body_is_refused(gateway, fake_provider):
    secret, marker, since = planted(), secrets.token_hex(8), now()
    assert utf7(secret).encode("ascii").decode("utf-7") == secret
    body = chat(f"deploy with {utf7(secret)}")
    status, headers, answer = http1(
        gateway, post(body, marker, Content_Type="application/json; charset=utf-7")
    )
    assert_refused(status, headers, answer, "charset utf-7 is not accepted")
    assert received(fake_provider, marker) == []
    refusal_row(gateway, since, "charset utf-7")
    assert_nowhere(gateway, fake_provider, utf7(secret))


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("content-encoding", "an unknown content-encoding is not supported"),
        ("content-type", "an unknown charset is not accepted"),
    ],
)
def test_an_unknown_encoding_or_charset_is_refused_without_quoting_it(
    gateway, fake_provider, header, reason
):
    secret, marker = planted(), secrets.token_hex(8)
    value = secret if header == "content-encoding" else f"application/json; charset={secret}"
    raw = post(chat("hello"), marker, **{header.replace("-", "_"): value})
    status, headers, body = http1(gateway, raw)
    assert_refused(status, headers, body, reason)
    assert secret not in body.decode()
    assert received(fake_provider, marker) == []
    assert_nowhere(gateway, fake_provider, secret)


def test_a_content_encoding_the_gateway_does_not_decode_is_refused(gateway, fake_provider):
    marker = secrets.token_hex(8)
    status, headers, body = http1(gateway, post(chat("hi"), marker, Content_Encoding="compress"))
    assert_refused(status, headers, body, "content-encoding compress is not supported")
    assert received(fake_provider, marker) == []


def test_a_multipart_part_in_utf7_is_refused_on_any_endpoint(gateway, fake_provider):
    secret, marker = planted(), secrets.token_hex(8)
    form = (
        "--b0undary\r\n"
        'Content-Disposition: form-data; name="file"; filename="notes.txt"\r\n'
        "Content-Type: text/plain; charset=utf-7\r\n\r\n"
        f"key {utf7(secret)}\r\n"
        "--b0undary--\r\n"
    ).encode()
    raw = (
        f"POST /v1/files HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer sk-test-not-real\r\n"
        f"Content-Type: multipart/form-data; boundary=b0undary\r\nX-Test-Marker: {marker}\r\n"
        f"Content-Length: {len(form)}\r\n\r\n"
    ).encode() + form
    status, headers, body = http1(gateway, raw)
    assert_refused(status, headers, body, "charset utf-7 is not accepted")
    assert received(fake_provider, marker) == []
    assert_nowhere(gateway, fake_provider, utf7(secret))


def test_a_repeated_json_key_is_refused(gateway, fake_provider):
    secret, marker = planted(), secrets.token_hex(8)
    body = (
        '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello",'
        f'"content":"key {secret}"}}]}}'
    ).encode()
    status, headers, answer = http1(gateway, post(body, marker))
    assert status == 400, answer
    assert headers["x-tollhouse-decision"] == "block; stage=parse"
    message = json.loads(answer)["error"]["message"]
    assert "$.messages[0]: duplicate key" in message
    assert received(fake_provider, marker) == []
    assert_nowhere(gateway, fake_provider, secret)


def test_transfer_encoding_beside_content_length_is_refused(gateway, fake_provider):
    secret, marker = planted(), secrets.token_hex(8)
    body = chat(f"key {secret}")
    raw = post(body, marker, chunked=True).replace(
        b"Transfer-Encoding", f"Content-Length: {len(body)}\r\nTransfer-Encoding".encode()
    )
    status, _, _ = http1(gateway, raw)
    assert status == 400
    assert received(fake_provider, marker) == []
    assert_nowhere(gateway, fake_provider, secret)


# --- forwarded: bodies the gateway read in full go out as it read them ----------------------


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", lambda b: gzip.compress(b[:30]) + gzip.compress(b[30:])),  # two members
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw deflate, no zlib header
        ("gzip, gzip", lambda b: gzip.compress(gzip.compress(b))),  # mitmproxy can't re-encode
    ],
    ids=["gzip-two-members", "raw-deflate", "gzip-twice"],
)
def test_every_compressed_part_is_scanned_and_sent_as_scanned(
    gateway, fake_provider, encoding, encode
):
    secret, marker = planted(), secrets.token_hex(8)
    body = chat(f"[[fake:echo]] {marker} deploy with {secret} today")
    assert secret.encode() in body[30:]
    status, _, answer = http1(gateway, post(encode(body), marker, Content_Encoding=encoding))
    assert status == 200, answer
    [sent] = received(fake_provider, marker)
    assert "content-encoding" not in {k.lower() for k in sent["headers"]}
    assert "[AWS_ACCESS_KEY_ID_1]" in sent["body"] and marker in sent["body"]
    assert_nowhere(gateway, fake_provider, secret)


def test_a_trailing_dot_host_is_answered_and_scanned(gateway, fake_provider):
    import httpx

    secret, marker = planted(), secrets.token_hex(8)
    # The gateway's CA is name-constrained, and verifiers compare a constraint literally: a leaf
    # naming `api.openai.com.` would break the chain, so the gateway's names `api.openai.com`,
    # which Python's hostname check does not equate with the dotted form. The chain is verified;
    # the hostname check is off so that the gateway's handling of the dotted name is tested.
    context = ssl.create_default_context(cafile=str(gateway.ca))
    context.check_hostname = False
    with httpx.Client(proxy=gateway.proxy, verify=context, timeout=30) as client:
        reply = client.post(
            f"https://{HOST}.{PATH}",
            content=chat(f"[[fake:echo]] {marker} key {secret}"),
            headers={
                "authorization": "Bearer sk-test-not-real",
                "content-type": "application/json",
            },
        )
    assert reply.status_code == 200, reply.text
    [sent] = received(fake_provider, marker)
    assert "[AWS_ACCESS_KEY_ID_1]" in sent["body"]
    assert_nowhere(gateway, fake_provider, secret)


# --- HTTP/2 -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def h2_gateway(
    tmp_path_factory: pytest.TempPathFactory, fake_provider: FakeProvider
) -> Iterator[Gateway]:
    """A gateway that speaks HTTP/2 to clients: with mitmproxy's default (eager) strategy the
    client gets the upstream's protocol, and the fake provider speaks HTTP/1.1 only."""
    base = tmp_path_factory.mktemp("h2-gateway")
    (base / "certs").mkdir()
    (base / "certs" / "config.yaml").write_text("connection_strategy: lazy\n")
    gateway, proc = start_gateway(base, fake_provider)
    try:
        yield gateway
    finally:
        stop(proc)


def http2(
    gateway: Gateway, headers: list[tuple[str, str]], body: bytes, trailers: list[tuple[str, str]]
) -> tuple[int, bytes]:
    with tunnel(gateway, alpn="h2") as conn:
        assert conn.selected_alpn_protocol() == "h2"
        h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        h2c.initiate_connection()
        pseudo = [(":method", "POST"), (":path", PATH), (":scheme", "https"), (":authority", HOST)]
        h2c.send_headers(1, pseudo + headers)
        h2c.send_data(1, body)
        if trailers:
            h2c.send_headers(1, trailers, end_stream=True)
        else:
            h2c.end_stream(1)
        conn.sendall(h2c.data_to_send())
        status, answer = 0, b""
        while True:
            data = conn.recv(65536)
            assert data, "connection closed without an answer"
            for event in h2c.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    status = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    answer += event.data
                    h2c.acknowledge_received_data(event.flow_controlled_length, 1)
                elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                    return status, answer
            conn.sendall(h2c.data_to_send())


def h2_headers(marker: str) -> list[tuple[str, str]]:
    return [
        ("authorization", "Bearer sk-test-not-real"),
        ("content-type", "application/json"),
        ("x-test-marker", marker),
    ]


def test_http2_request_trailers_are_refused(h2_gateway, fake_provider):
    secret, marker = planted(), secrets.token_hex(8)
    status, answer = http2(h2_gateway, h2_headers(marker), chat("hello"), [("x-note", secret)])
    assert status == 400, answer
    message = json.loads(answer)["error"]["message"]
    assert "request trailers are not accepted" in message
    assert received(fake_provider, marker) == []
    assert_nowhere(h2_gateway, fake_provider, secret)


def test_http2_two_member_gzip_is_scanned_in_full(h2_gateway, fake_provider):
    secret, marker = planted(), secrets.token_hex(8)
    body = chat(f"[[fake:echo]] {marker} deploy with {secret}")
    raw = gzip.compress(body[:40]) + gzip.compress(body[40:])
    status, answer = http2(h2_gateway, [*h2_headers(marker), ("content-encoding", "gzip")], raw, [])
    assert status == 200, answer
    [sent] = received(fake_provider, marker)
    assert "[AWS_ACCESS_KEY_ID_1]" in sent["body"]
    assert_nowhere(h2_gateway, fake_provider, secret)
