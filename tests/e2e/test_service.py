"""The gateway as a service: a load balancer's health check, `systemctl reload` (SIGHUP) picking up
edited rules, and `systemctl stop` (SIGTERM) letting a stream in flight finish with its audit row.

One gateway for the module, on a copy of the rules; the SIGTERM test stops it, so it runs last.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import string
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from tests.e2e.conftest import ROOT, FakeProvider, Gateway, start_gateway, stop, user_client

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def service(
    tmp_path_factory: pytest.TempPathFactory, fake_provider: FakeProvider
) -> Iterator[tuple[Gateway, subprocess.Popen]]:
    base = tmp_path_factory.mktemp("service")
    rules = base / "rules"
    shutil.copytree(ROOT / "rules", rules)
    gateway, proc = start_gateway(base, fake_provider, rules)
    try:
        yield gateway, proc
    finally:
        stop(proc)


def letters() -> str:
    """A unique marker with no digits: a long digit run could be a card or phone number, which
    DLP would mask on its way upstream."""
    return "".join(random.choices(string.ascii_lowercase, k=16))


def chat(content: str) -> dict:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]}


def test_a_load_balancer_health_check_gets_200_and_a_json_report(service):
    gateway, _ = service
    # As a load balancer asks: straight to the gateway's address, no proxy.
    reply = httpx.get(f"http://127.0.0.1:{gateway.port}/healthz", trust_env=False)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    report = reply.json()
    assert report["status"] == "ok"
    assert report["audit_writer"] is True
    assert report["rules"] and all(report["rules"].values())
    assert report["store"] in ("none", "up")


def test_healthz_of_another_host_is_proxied_not_answered_by_the_gateway(service):
    gateway, _ = service
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with httpx.Client(proxy=gateway.proxy, trust_env=False) as client:
            reply = client.get(f"http://127.0.0.1:{server.server_port}/healthz")
    finally:
        server.shutdown()
    assert (reply.status_code, seen) == (204, ["/healthz"])


def test_sighup_reloads_an_edited_dlp_yaml(service, fake_provider):
    gateway, proc = service
    codename = "Quillfeather"  # a project name the DLP does not know yet

    def ask() -> tuple[int, list[dict]]:
        """The client's status and what the provider received of this request."""
        marker = f"sighup-{letters()}"
        with user_client(gateway) as client:
            reply = client.post(
                "https://api.openai.com/v1/chat/completions",
                json=chat(f"{marker}: status of {codename}?"),
                headers={"authorization": "Bearer sk-test"},
            )
        seen = [r for r in fake_provider.requests() if marker in (r.get("body") or "")]
        return reply.status_code, seen

    status, seen = ask()
    assert status == 200
    assert codename in seen[0]["body"]
    dlp = gateway.rules / "dlp.yaml"
    text = dlp.read_text()
    assert "deny_list: [Bluebird," in text
    dlp.write_text(text.replace("deny_list: [Bluebird,", f"deny_list: [{codename}, Bluebird,"))
    proc.send_signal(signal.SIGHUP)  # `systemctl reload tollhouse`
    deadline = time.monotonic() + 30
    while "rules reloaded" not in gateway.log.read_text():
        assert time.monotonic() < deadline, gateway.log.read_text()[-2000:]
        time.sleep(0.2)
    # The edited policy is in force without a restart: the codename is now a finding, and the
    # standard policy blocks project codenames.
    assert ask() == (403, [])
    health = httpx.get(f"http://127.0.0.1:{gateway.port}/healthz", trust_env=False).json()
    assert health["rules_reloaded_at"]


def test_sigterm_lets_a_slow_stream_finish_and_writes_its_audit_row(service, fake_provider):
    gateway, proc = service
    marker = f"drain-{letters()}"
    events: list[str] = []
    with (
        user_client(gateway) as client,
        client.stream(
            "POST",
            "https://api.openai.com/v1/chat/completions",
            json={**chat(marker), "stream": True},
            # 12 words, one event each, 250 ms apart: about 3 s in flight
            headers={"authorization": "Bearer sk-test", "x-fake-behavior": "chunks=12 slow=250"},
        ) as reply,
    ):
        assert reply.status_code == 200
        lines = reply.iter_lines()
        for line in lines:
            if line.startswith("data:"):
                events.append(line)
                break
        proc.send_signal(signal.SIGTERM)  # `systemctl stop` while the answer streams
        time.sleep(0.5)
        with pytest.raises(httpx.ConnectError):  # no new connections while draining
            httpx.get(f"http://127.0.0.1:{gateway.port}/healthz", trust_env=False)
        events += [line for line in lines if line.startswith("data:")]
    assert events[-1] == "data: [DONE]"  # the stream was not cut
    words = [json.loads(e[5:]) for e in events[:-1]]
    assert (
        sum(1 for w in words if w.get("choices") and w["choices"][0]["delta"].get("content")) >= 12
    )
    assert proc.wait(timeout=30) == 0
    assert "drained; flushing the audit" in gateway.log.read_text()
    [seen] = [r for r in fake_provider.requests() if marker in (r.get("body") or "")]
    # After exit: the row is in the database, not in a spool for the next start.
    rows = gateway.audit(
        "SELECT status, decision, tokens_out FROM exchanges "
        "WHERE path = '/v1/chat/completions' AND status = 200 ORDER BY ended_at DESC LIMIT 1"
    )
    assert rows[0]["decision"] == "allow"
    assert rows[0]["tokens_out"]
    assert seen
