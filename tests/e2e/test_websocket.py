"""Websockets on AI hosts, end to end: a realtime client talks to the fake provider through the
gateway. What the client sends is redacted before the provider sees it, a frame with a blocked
entity never leaves and ends the connection with a reason, frames nobody can read are refused,
and an upgrade where the catalog allows none is refused before it reaches the provider."""

from __future__ import annotations

import json
import socket
import ssl
import uuid
from dataclasses import dataclass, field

import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

pytestmark = pytest.mark.e2e

EMAIL = "ines.haddad@wavecrest-labs.io"
AWS_KEY = "AKIA" + "W7KQ2ZRMV4XNPJ3T"
GITHUB = "ghp_" + "Zq8Lm2Nw4Rt6Yv1Xb3Kd5Hf7Js9Pa0Ce2Gi4"
PRIVATE_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
    "aFDrBz9vFqU4yN7oZ0a9GQ0k1D6iP8cQ3m0m1w5ZQbq2x2Xq4N3Xg8o3zQe4d1Yk\n"
    "-----END RSA PRIVATE KEY-----"
)
REALTIME = "/v1/realtime?model=gpt-realtime"


@dataclass
class Realtime:
    """A websocket client through the gateway, as an SDK would open one: CONNECT, TLS with the
    gateway's CA, then the websocket handshake."""

    sock: ssl.SSLSocket
    ws: WSConnection
    pending: list[Event] = field(default_factory=list)
    closed: CloseConnection | None = None

    def send(self, event: dict) -> None:
        self.sock.sendall(self.ws.send(TextMessage(json.dumps(event))))

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(self.ws.send(BytesMessage(data)))

    def next(self, timeout: float = 10.0) -> Event:
        """The next websocket event (a message, or the close); fails rather than hang."""
        self.sock.settimeout(timeout)
        while not self.pending:
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
            self.pending.extend(self.ws.events())
        event = self.pending.pop(0)
        if isinstance(event, CloseConnection):
            self.closed = event
        return event

    def reply(self) -> dict:
        event = self.next()
        assert isinstance(event, TextMessage), event
        return json.loads(event.data)

    def close(self) -> None:
        try:
            if self.closed is None:
                self.sock.sendall(self.ws.send(CloseConnection(code=1000)))
                while not isinstance(self.next(), CloseConnection):
                    pass
        except OSError:
            pass
        self.sock.close()


def tunnel(gateway, host: str) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", gateway.port), timeout=10)
    raw.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = raw.recv(4096)
        assert chunk, "the gateway closed the CONNECT"
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
    context = ssl.create_default_context(cafile=str(gateway.ca))
    return context.wrap_socket(raw, server_hostname=host)


def open_ws(
    gateway, target: str = REALTIME, host: str = "api.openai.com"
) -> tuple[Realtime | None, int, bytes]:
    """A websocket, or None with the status and body of the refusal."""
    sock = tunnel(gateway, host)
    ws = WSConnection(ConnectionType.CLIENT)
    sock.sendall(
        ws.send(
            Request(
                host=host,
                target=target,
                extra_headers=[(b"authorization", b"Bearer sk-test-not-real")],
            )
        )
    )
    client = Realtime(sock, ws)
    status, body = 0, b""
    while True:
        event = client.next()
        if isinstance(event, AcceptConnection):
            return client, 101, b""
        if isinstance(event, RejectConnection):
            status = event.status_code
            if not event.has_body:
                break
        elif isinstance(event, RejectData):
            body += event.data
            if event.body_finished:
                break
    sock.close()
    return None, status, body


def received(fake_provider, marker: str) -> list[dict]:
    """Messages the provider received over websockets that carry ``marker``."""
    return [
        r for r in fake_provider.requests() if r["method"] == "WEBSOCKET" and marker in r["body"]
    ]


def nowhere(gateway, fake_provider, *planted: str) -> None:
    """None of ``planted`` reached the provider, the audit tables or the gateway log."""
    upstream = json.dumps(fake_provider.requests())
    tables = json.dumps(
        [
            gateway.audit(f"select * from {table}", expect=0)
            for table in ("exchanges", "findings", "events")
        ],
        default=str,
    )
    log = gateway.log.read_text()
    for value in planted:
        assert value not in upstream, "reached the provider"
        assert value not in tables, "in the audit"
        assert value not in log, "in the gateway log"


def audit_row(gateway, marker: str) -> dict:
    """The websocket's exchange row, found through its events (the row holds no frame text)."""
    rows = gateway.audit(
        "select e.* from exchanges e where e.operation = 'realtime' and e.id in "
        "(select exchange_id from events where stage = 'websocket' and kind = 'closed') "
        "order by e.started_at desc",
        expect=1,
    )
    return rows[0]


def test_realtime_events_reach_the_provider_redacted(gateway, fake_provider):
    marker = uuid.uuid4().hex
    client, status, _ = open_ws(gateway)
    assert client is not None and status == 101
    client.send(
        {
            "type": "session.update",
            "session": {"instructions": f"{marker} Reply by mail to {EMAIL} when done."},
        }
    )
    first = client.reply()
    client.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": f"{marker} deploy with {AWS_KEY}"}],
            },
            "metadata": {GITHUB: "tag"},  # a secret as an object key
        }
    )
    second = client.reply()
    client.close()

    got = received(fake_provider, marker)
    assert len(got) == 2
    session, item = got[0]["json"], got[1]["json"]
    assert session["type"] == "session.update"
    assert "[EMAIL_1]" in session["session"]["instructions"]
    assert "[AWS_ACCESS_KEY_ID_1]" in item["item"]["content"][0]["text"]
    assert GITHUB not in json.dumps(item["metadata"]) and len(item["metadata"]) == 1
    # The client reads what the provider got: redacted as well.
    assert EMAIL not in json.dumps(first) and AWS_KEY not in json.dumps(second)
    nowhere(gateway, fake_provider, EMAIL, AWS_KEY, GITHUB)

    row = audit_row(gateway, marker)
    assert row["decision"] == "allow" and row["status"] == 101
    assert "EMAIL_ADDRESS:redact=1" in row["dlp_actions"]
    assert "AWS_ACCESS_KEY_ID:redact=1" in row["dlp_actions"]
    closed = gateway.audit(
        f"select detail from events where exchange_id = '{row['id']}' and kind = 'closed'"
    )[0]["detail"]
    assert closed["client_frames"] == 2 and closed["rewritten"] == 2
    assert closed["closed_by"] == "client"


def test_a_frame_with_a_private_key_is_dropped_and_the_connection_closed(gateway, fake_provider):
    marker = uuid.uuid4().hex
    client, _, _ = open_ws(gateway)
    assert client is not None
    client.send({"type": "session.update", "session": {"instructions": f"{marker} be brief"}})
    client.reply()
    client.send(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": f"{marker} here:\n{PRIVATE_KEY}"}],
            },
        }
    )
    # An event sent after the blocked one never leaves either.
    client.send({"type": "response.create", "response": {"instructions": f"{marker} after"}})
    event = client.next()
    assert isinstance(event, CloseConnection)
    assert event.code == 1008
    assert "PRIVATE_KEY" in event.reason and "BEGIN" not in event.reason
    client.sock.close()

    got = received(fake_provider, marker)
    assert [r["json"]["type"] for r in got] == ["session.update"]
    nowhere(gateway, fake_provider, "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn")
    row = gateway.audit(
        "select id, decision, reason, dlp_actions from exchanges where operation = 'realtime' "
        "and decision = 'block' and reason like '%PRIVATE_KEY%' order by started_at desc"
    )[0]
    assert "PRIVATE_KEY:block" in row["dlp_actions"]
    closed = gateway.audit(
        f"select detail from events where exchange_id = '{row['id']}' and kind = 'closed'"
    )[0]["detail"]
    assert closed["closed_by"] == "gateway" and closed["refused"] == 1


def test_a_binary_frame_is_refused(gateway, fake_provider):
    marker = uuid.uuid4().hex
    client, _, _ = open_ws(gateway)
    assert client is not None
    client.send_bytes(f"RIFF{marker} raw audio {AWS_KEY}".encode())
    event = client.next()
    assert isinstance(event, CloseConnection) and event.code == 1003
    client.sock.close()
    assert received(fake_provider, marker) == []
    nowhere(gateway, fake_provider, AWS_KEY)


def test_audio_in_json_passes_but_is_not_scanned_as_text(gateway, fake_provider):
    marker = uuid.uuid4().hex
    audio = "UklGR" + "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g" * 40  # binary, base64
    client, _, _ = open_ws(gateway)
    assert client is not None
    client.send({"type": "input_audio_buffer.append", "event_id": marker, "audio": audio})
    assert client.reply()["received"]["audio"] == audio
    client.close()
    assert received(fake_provider, marker)[0]["json"]["audio"] == audio


def test_an_upgrade_where_the_catalog_allows_none_is_refused(gateway, fake_provider):
    marker = uuid.uuid4().hex
    client, status, body = open_ws(gateway, target=f"/v1/chat/completions?m={marker}")
    assert client is None and status == 403
    error = json.loads(body)["error"]
    assert error["type"] == "permission_error" and "websocket" in error["message"]
    # A look-alike path and a provider without realtime are refused too.
    for target, host in (
        (f"/v1/realtime/../chat/completions?m={marker}", "api.openai.com"),
        (f"/v1/realtime?m={marker}", "api.groq.com"),
    ):
        client, status, _ = open_ws(gateway, target=target, host=host)
        assert client is None and status in (400, 403)
    assert [r for r in fake_provider.requests() if marker in r["path"]] == []


def test_gemini_live_setup_is_scanned(gateway, fake_provider):
    marker = uuid.uuid4().hex
    path = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
    client, status, _ = open_ws(gateway, target=path, host="generativelanguage.googleapis.com")
    assert client is not None, status
    client.send(
        {
            "setup": {
                "model": "models/gemini-live-2.5-flash",
                "systemInstruction": {"parts": [{"text": f"{marker} reports go to {EMAIL}"}]},
            }
        }
    )
    client.reply()
    client.close()
    got = received(fake_provider, marker)[0]["json"]
    assert "[EMAIL_1]" in got["setup"]["systemInstruction"]["parts"][0]["text"]
    nowhere(gateway, fake_provider, EMAIL)


def test_the_upgrade_query_string_is_scanned_too(gateway, fake_provider):
    marker = uuid.uuid4().hex
    client, status, _ = open_ws(gateway, target=f"{REALTIME}&m={marker}&note={EMAIL}")
    assert client is not None, status
    client.close()
    paths = [
        r["path"] for r in fake_provider.requests() if r["method"] == "GET" and marker in r["path"]
    ]
    assert len(paths) == 1 and "EMAIL_1" in paths[0]
    nowhere(gateway, fake_provider, EMAIL)
