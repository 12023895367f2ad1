"""Identity and shadow AI end to end: real gateways (monitor and enforce), real clients (curl, the
openai SDK, httpx, raw sockets), the fake provider, and `tollhouse shadow` on the audit log."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import openai
import pytest
import yaml

from tests.e2e.conftest import BIN, ROOT, FakeProvider, Gateway, start_gateway, stop
from tests.unit.identity.idfixtures import (
    ALICE_KEY,
    BOB_KEY,
    PASSWORDS,
    Material,
    write_identities,
)
from tollhouse.audit.query import run_query
from tollhouse.identity.keys import SECRET_NAME, fingerprint

pytestmark = pytest.mark.e2e

SECRET = b"e2e-fingerprint-secret"
OBSERVED = "api.perplexity.ai"  # served by the fake provider; made an observed consumer app here
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


def _rules(base: Path, mode: str) -> Material:
    rules = base / "rules"
    rules.mkdir(parents=True)
    for path in (ROOT / "rules").glob("*.yaml"):
        shutil.copy(path, rules / path.name)
    hosts = yaml.safe_load((rules / "hosts.yaml").read_text())
    for api in hosts["apis"]:
        api["hosts"] = [h for h in api["hosts"] if h != OBSERVED]
    hosts["apis"] = [a for a in hosts["apis"] if a["hosts"]]
    hosts["consumer_apps"].append({"name": "chat-demo", "hosts": [OBSERVED], "handling": "observe"})
    (rules / "hosts.yaml").write_text(yaml.safe_dump(hosts))
    data = base / "data"
    data.mkdir()
    (data / SECRET_NAME).write_text(SECRET.hex())  # the gateway's fingerprint secret
    return write_identities(rules, SECRET, mode=mode)


def _gateway(base: Path, fake: FakeProvider, mode: str) -> tuple[Gateway, Material, object]:
    material = _rules(base, mode)
    gateway, proc = start_gateway(base, fake, rules=material.rules)
    return gateway, material, proc


@pytest.fixture(scope="module")
def monitor(tmp_path_factory, fake_provider) -> Iterator[tuple[Gateway, Material]]:
    gateway, material, proc = _gateway(
        tmp_path_factory.mktemp("id-monitor"), fake_provider, "monitor"
    )
    try:
        yield gateway, material
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def enforce(tmp_path_factory, fake_provider) -> Iterator[tuple[Gateway, Material]]:
    gateway, material, proc = _gateway(
        tmp_path_factory.mktemp("id-enforce"), fake_provider, "enforce"
    )
    try:
        yield gateway, material
    finally:
        stop(proc)


def _proxy_url(gateway: Gateway, user: str) -> str:
    return f"http://{user}:{quote(PASSWORDS[user], safe='')}@127.0.0.1:{gateway.port}"


def _curl(gateway: Gateway, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["curl", "-sS", "--proxy", gateway.proxy, "--cacert", str(gateway.ca), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _shadow(gateway: Gateway) -> dict:
    result = subprocess.run(
        [str(BIN / "tollhouse"), "shadow", "--data", str(gateway.data), "--json"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(result.stdout)


def _connect(gateway: Gateway, host: str, header: str | None) -> tuple[int, bytes, str]:
    """A raw CONNECT, as a client library sends it: status line, body, Proxy-Authenticate."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        lines = [f"CONNECT {host}:443 HTTP/1.1", f"Host: {host}:443"]
        if header:
            lines.append(f"Proxy-Authorization: {header}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        with sock.makefile("rb") as reply:
            status = int(reply.readline().split()[1])
            headers = {}
            while (line := reply.readline().strip()) != b"":
                name, _, value = line.decode().partition(":")
                headers.setdefault(name.strip().lower(), []).append(value.strip())
            body = reply.read(int(headers.get("content-length", ["0"])[0]))
    return status, body, ", ".join(headers.get("proxy-authenticate", []))


def test_two_users_one_sanctioned_one_shadow(monitor, fake_provider, monkeypatch):
    gateway, _ = monitor
    fake_provider.clear()
    # Alice: authenticated, through the support bot (app header), with the bot's registered key.
    alice = _curl(
        gateway, "--proxy-user", f"alice:{PASSWORDS['alice']}", "--fail-with-body",
        "-H", "X-Tollhouse-App: support-bot", "-H", f"authorization: Bearer {ALICE_KEY}",
        "-H", "content-type: application/json", "--data", json.dumps(CHAT),
        "https://api.openai.com/v1/chat/completions",
    )  # fmt: skip
    assert alice.returncode == 0, alice.stderr
    # Bob: the openai SDK with his personal key and proxy credentials in HTTPS_PROXY; no app.
    for name in [k for k in __import__("os").environ if k.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HTTPS_PROXY", _proxy_url(gateway, "bob"))
    monkeypatch.setenv("SSL_CERT_FILE", str(gateway.ca))
    reply = openai.OpenAI(api_key=BOB_KEY).chat.completions.create(**CHAT)
    assert reply.choices[0].message.content

    received = fake_provider.requests()
    assert len(received) == 2
    for request in received:  # the gateway's own headers never reach the provider
        assert "proxy-authorization" not in request["headers"]
        assert "x-tollhouse-app" not in request["headers"]
    assert {r["headers"]["authorization"] for r in received} == {
        f"Bearer {ALICE_KEY}", f"Bearer {BOB_KEY}"}  # fmt: skip

    rows = gateway.audit(
        "select user_id from exchanges where user_id in ('alice', 'bob')", expect=2
    )
    assert {r["user_id"] for r in rows} == {"alice", "bob"}
    callers = {c["who"]: c for c in _shadow(gateway)["callers"]}
    assert callers["alice"]["sanctioned"] and callers["alice"]["apps"] == ["support-bot"]
    bob = callers["bob"]
    assert not bob["sanctioned"] and bob["services"] == ["openai"]
    assert bob["unsanctioned_keys"] == [fingerprint(SECRET, BOB_KEY)]
    assert bob["shadow_reasons"] == ["no-app", "unregistered-key"]


def test_observed_consumer_app_is_measured_not_decrypted(monitor, fake_provider):
    gateway, _ = monitor
    # CONNECT to the fake provider (it stands in for the app's server), TLS with the app's name.
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        creds = base64.b64encode(f"carol:{PASSWORDS['carol']}".encode()).decode()
        sock.sendall(
            f"CONNECT localhost:{fake_provider.port} HTTP/1.1\r\nHost: localhost\r\n"
            f"Proxy-Authorization: Basic {creds}\r\n\r\n".encode()
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        context = ssl.create_default_context(cafile=str(fake_provider.ca))  # not the gateway's
        with context.wrap_socket(sock, server_hostname=OBSERVED) as tls:
            issuer = dict(x[0] for x in tls.getpeercert()["issuer"])
            assert issuer["commonName"] == "Tollhouse Fake Provider CA"  # the server's own cert
            tls.sendall(b"GET /_fake/requests HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.")
    rows = gateway.audit(
        f"select * from connections where sni = '{OBSERVED}' and bytes_down > 0", expect=1
    )
    row = rows[-1]
    assert (row["app"], row["handling"], row["user_id"]) == ("chat-demo", "observe", "carol")
    assert row["bytes_up"] > 500 and row["bytes_down"] > len(answer)  # TLS overhead included
    assert row["duration_ms"] > 0 and row["client_addr"] == "127.0.0.1"
    decrypted = gateway.audit(f"select count(*) as n from exchanges where host = '{OBSERVED}'")
    assert decrypted[0]["n"] == 0
    observed = _shadow(gateway)["observed"]
    assert any(o["who"] == "carol" and o["app"] == "chat-demo" for o in observed)


def test_enforce_challenges_a_client_without_credentials(enforce):
    gateway, _ = enforce
    status, body, challenge = _connect(gateway, "api.openai.com", None)
    assert status == 407 and 'Basic realm="tollhouse"' in challenge
    assert b"proxy authentication required" in body
    # curl answers the challenge when it has credentials, and the SDK sends them on CONNECT.
    result = _curl(
        gateway, "--proxy-user", f"carol:{PASSWORDS['carol']}", "--fail-with-body",
        "-H", "X-Tollhouse-App: notebook", "-H", "authorization: Bearer sk-any",
        "-H", "content-type: application/json", "--data", json.dumps(CHAT),
        "https://api.openai.com/v1/chat/completions",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_enforce_refuses_a_wrong_password(enforce):
    gateway, _ = enforce
    result = _curl(
        gateway, "--proxy-user", "alice:not-her-password", "https://api.openai.com/v1/models"
    )
    assert result.returncode != 0 and "407" in result.stderr
    wrong = base64.b64encode(b"alice:not-her-password").decode()
    status, body, _ = _connect(gateway, "api.openai.com", f"Basic {wrong}")
    assert status == 407 and b"wrong user or password" in body and b"not-her" not in body


@pytest.mark.parametrize(
    ("claims", "expected"),
    [({"exp": 1_000_000_000}, b"has expired"), ({"aud": "other"}, b"audience"), ({}, None)],
    ids=["expired", "wrong-audience", "valid"],
)
def test_enforce_checks_proxy_tokens(enforce, claims, expected):
    gateway, material = enforce
    token = material.token("RS256", **claims)
    status, body, challenge = _connect(gateway, "api.openai.com", f"Bearer {token}")
    if expected is None:
        assert status == 200
        return
    assert status == 407 and expected in body and token.encode() not in body
    assert 'error="invalid_token"' in challenge
    forged = material.token(key=material.stranger)
    status, body, _ = _connect(gateway, "api.openai.com", f"Bearer {forged}")
    assert status == 407 and b"signature does not verify" in body


def test_enforce_refuses_an_unattributed_request_in_provider_shape(enforce, fake_provider):
    gateway, material = enforce
    fake_provider.clear()
    token = material.token("ES256")  # alice, team support: bound to support-bot only
    proxy = httpx.Proxy(gateway.proxy, headers={"Proxy-Authorization": f"Bearer {token}"})
    with httpx.Client(
        proxy=proxy, verify=ssl.create_default_context(cafile=str(gateway.ca)), timeout=30
    ) as client:
        refused = client.post(
            "https://api.openai.com/v1/chat/completions", json=CHAT,
            headers={"authorization": f"Bearer {BOB_KEY}"},
        )  # fmt: skip
        allowed = client.post(
            "https://api.openai.com/v1/chat/completions", json=CHAT,
            headers={"authorization": f"Bearer {ALICE_KEY}"},
        )  # fmt: skip
    assert refused.status_code == 403 and refused.headers["x-should-retry"] == "false"
    message = refused.json()["error"]["message"]
    assert "no application" in message and fingerprint(SECRET, BOB_KEY) in message
    assert BOB_KEY not in message
    assert allowed.status_code == 200  # the registered key names support-bot
    assert len(fake_provider.requests()) == 1


def test_no_secret_reaches_the_audit_log(monitor, enforce):
    # Runs last in this module: every password, token and key used above must be absent from
    # every audit table (and any spooled rows) and from the gateway's log.
    secrets = [*PASSWORDS.values(), ALICE_KEY, BOB_KEY, "not-her-password"]
    for gateway, material in (monitor, enforce):
        secrets.append(material.token()[:40])  # every token shares its header prefix
        gateway.audit("select count(*) as n from exchanges", expect=1)
        tables = []
        for table in ("exchanges", "events", "findings", "connections"):
            tables.append(run_query(gateway.data, f"select * from {table}"))
        dump = json.dumps(tables, default=str)
        dump += "".join(p.read_text() for p in gateway.data.glob("*.jsonl"))
        assert '"alice"' in dump  # the identities are there...
        log = gateway.log.read_text()
        for secret in secrets:  # ...the secrets are not
            assert secret not in dump and secret not in log
