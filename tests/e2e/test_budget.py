"""Budgets, as finance and a developer meet them: a warning near the cap, a clear error at it, a
downgrade in the audit, spend that survives a restart, and two gateways sharing one Redis that
cannot be talked into overspending together."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.conftest import BIN, ROOT, FakeProvider, Gateway, start_gateway, stop
from tests.unit.budget.budget_helpers import redis_server
from tollhouse.budget.store import open_store

pytestmark = pytest.mark.e2e

# Output tokens cost $1000 per million (a tenth of a cent each), input is free: a request with
# max_tokens=100 has a worst case of exactly $0.10, and `chunks=N` makes the fake answer N tokens.
PRICES = """\
models:
  - {model: gpt-4o-mini, input_per_mtok: 0, output_per_mtok: 1000}
  - {model: gpt-4o, input_per_mtok: 0, output_per_mtok: 1000}
  - {model: gpt-4.1-nano, input_per_mtok: 0, output_per_mtok: 10}
"""
STORY = """\
chains:
  cheaper: [gpt-4o, gpt-4.1-nano]
budgets:
  - {scope: {model: gpt-4o-mini}, period: month, limit_usd: 0.30}
  - {scope: {model: gpt-4o}, period: day, limit_usd: 0.15, on_cap: downgrade, chain: cheaper}
"""


def make_rules(base: Path, budgets: str) -> Path:
    rules = base / "rules"
    shutil.copytree(ROOT / "rules", rules)
    (rules / "prices.yaml").write_text(PRICES)
    (rules / "budgets.yaml").write_text(budgets)
    return rules


def budget_status(gateway: Gateway, *state: str) -> dict[str, dict]:
    """``tollhouse budget --json``, as an operator runs it next to the gateway."""
    result = subprocess.run(
        [
            *(str(BIN / "tollhouse"), "budget", "--rules", str(gateway.rules)),
            *("--data", str(gateway.data), "--json", *state),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return {row["budget"]: row for row in map(json.loads, result.stdout.splitlines())}


def settled(gateway: Gateway, key: str, state: str = "", timeout: float = 10.0) -> None:
    """Wait until nothing is reserved in budget ``key`` any more (the gateway settles off the
    request path). Reads the store directly, read-only, as `tollhouse budget` does."""
    store = open_store(state, gateway.data, read_only=True)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            rows = [s for s in store.states(time.time()) if s.key == key]
            if rows and all(s.reserved == 0 for s in rows):
                return
            time.sleep(0.05)
    finally:
        store.close()
    raise AssertionError(f"budget {key} still has reservations after {timeout}s")


@dataclass
class Deployment:
    base: Path
    fake: FakeProvider
    rules: Path
    gateway: Gateway
    proc: subprocess.Popen

    def restart(self) -> None:
        stop(self.proc)
        self.gateway, self.proc = start_gateway(self.base, self.fake, self.rules)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, fake_provider) -> Iterator[Deployment]:
    base = tmp_path_factory.mktemp("budget-gateway")
    rules = make_rules(base, STORY)
    gateway, proc = start_gateway(base, fake_provider, rules)
    deployment = Deployment(base, fake_provider, rules, gateway, proc)
    try:
        yield deployment
    finally:
        stop(deployment.proc)


@pytest.fixture
def sdk(deployment, monkeypatch):
    """The official SDK with its default retries, configured by environment like a user's."""
    monkeypatch.setenv("HTTPS_PROXY", deployment.gateway.proxy)
    monkeypatch.setenv("SSL_CERT_FILE", str(deployment.gateway.ca))
    sent: list[str] = []
    http = openai.DefaultHttpxClient(event_hooks={"request": [lambda r: sent.append(r.url.path)]})
    client = openai.OpenAI(api_key="sk-test-not-a-real-key", http_client=http)
    client.attempts = sent  # type: ignore[attr-defined]
    return client


def ask(client: openai.OpenAI, model: str, words: int, **kw):
    return client.chat.completions.with_raw_response.create(
        model=model,
        max_tokens=100,
        messages=[{"role": "user", "content": "Tell me about budgets"}],
        extra_headers={"x-fake-behavior": f"chunks={words}"},
        **kw,
    )


def test_warn_near_the_cap_then_a_clear_error_that_is_not_retried(deployment, sdk):
    gateway = deployment.gateway
    # A stream is charged its real usage: 50 tokens, $0.05, not the $0.10 it reserved.
    stream = ask(sdk, "gpt-4o-mini", 50, stream=True).parse()
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    settled(gateway, "model:gpt-4o-mini/month")
    assert budget_status(gateway)["model:gpt-4o-mini/month"]["spent"] == pytest.approx(0.05)

    quiet = ask(sdk, "gpt-4o-mini", 100)  # $0.15 of $0.30 committed: 50%
    assert "x-tollhouse-budget" not in quiet.headers
    settled(gateway, "model:gpt-4o-mini/month")
    warned = ask(sdk, "gpt-4o-mini", 100)  # $0.25 committed: 83%
    assert warned.headers["x-tollhouse-budget"] == "warn; budget=model:gpt-4o-mini/month; used=83%"
    settled(gateway, "model:gpt-4o-mini/month")

    sdk.attempts.clear()
    with pytest.raises(openai.RateLimitError) as caught:
        ask(sdk, "gpt-4o-mini", 100)
    assert len(sdk.attempts) == 1  # x-should-retry: false beats the SDK's default retries
    assert caught.value.response.headers.get("retry-after") is None
    message = caught.value.body["message"]
    assert message.startswith(
        "budget model:gpt-4o-mini/month has $0.05 left of $0.30, less than this request's "
        "worst case of $0.10; it resets at "
    )
    assert message.endswith("T00:00:00+00:00 (UTC)")

    row = budget_status(gateway)["model:gpt-4o-mini/month"]
    assert (row["spent"], row["reserved"], row["used_percent"]) == (0.25, 0.0, 83.3)
    events = gateway.audit(
        "select kind, detail from events where stage = 'budget' order by \"at\"", expect=2
    )
    assert [e["kind"] for e in events] == ["warn", "block"]


def test_spend_survives_a_restart(deployment, monkeypatch):
    deployment.restart()
    gateway = deployment.gateway
    assert budget_status(gateway)["model:gpt-4o-mini/month"]["spent"] == pytest.approx(0.25)
    monkeypatch.setenv("HTTPS_PROXY", gateway.proxy)
    monkeypatch.setenv("SSL_CERT_FILE", str(gateway.ca))
    with pytest.raises(openai.RateLimitError, match="model:gpt-4o-mini/month"):
        ask(openai.OpenAI(api_key="sk-test", max_retries=0), "gpt-4o-mini", 100)


def test_a_downgrade_is_visible_in_the_audit(deployment, monkeypatch):
    gateway = deployment.gateway
    monkeypatch.setenv("HTTPS_PROXY", gateway.proxy)
    monkeypatch.setenv("SSL_CERT_FILE", str(gateway.ca))
    client = openai.OpenAI(api_key="sk-test", max_retries=0)
    first = ask(client, "gpt-4o", 100).parse()  # $0.10 of $0.15
    assert first.model == "gpt-4o"
    settled(gateway, "model:gpt-4o/day")
    raw = ask(client, "gpt-4o", 100)
    assert raw.parse().model == "gpt-4.1-nano"
    assert raw.headers["x-tollhouse-budget"] == (
        "downgrade; budget=model:gpt-4o/day; from=gpt-4o; to=gpt-4.1-nano"
    )
    (row,) = gateway.audit(
        "select id, model_requested, model_sent, model_answered from exchanges "
        "where model_requested <> model_sent"
    )
    assert (row["model_requested"], row["model_sent"], row["model_answered"]) == (
        "gpt-4o",
        "gpt-4.1-nano",
        "gpt-4.1-nano",
    )
    (event,) = gateway.audit(
        f"select detail from events where exchange_id = '{row['id']}' and kind = 'downgrade'"
    )
    detail = json.loads(event["detail"]) if isinstance(event["detail"], str) else event["detail"]
    assert detail["budget"] == "model:gpt-4o/day" and "worst case" in detail["reason"]


# --- two gateways, one Redis -------------------------------------------------------------------


class _Hook(BaseHTTPRequestHandler):
    calls: list[dict] = []

    def do_POST(self):
        _Hook.calls.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_two_gateways_sharing_redis_cannot_overspend(tmp_path, fake_provider):
    hook = HTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    budgets = (
        f"notify: {{webhook: 'http://127.0.0.1:{hook.server_port}/budget'}}\n"
        "budgets:\n  - {scope: {provider: openai}, period: day, limit_usd: 1.00}\n"
    )
    with redis_server(tmp_path / "redis") as url:
        gateways, procs = [], []
        try:

            def start(name: str) -> tuple[Gateway, subprocess.Popen]:
                base = tmp_path / name
                base.mkdir()
                return start_gateway(
                    base, fake_provider, make_rules(base, budgets), ["--state", url]
                )

            with ThreadPoolExecutor(max_workers=2) as pool:  # both start at once: faster
                for gw, proc in pool.map(start, ("east", "west")):
                    gateways.append(gw)
                    procs.append(proc)
            clients = [
                httpx.Client(
                    proxy=gw.proxy,
                    verify=ssl.create_default_context(cafile=str(gw.ca)),
                    timeout=30,
                    limits=httpx.Limits(max_connections=100),
                    trust_env=False,
                )
                for gw in gateways
            ]
            body = {
                "model": "gpt-4o-mini",
                "max_tokens": 100,  # worst case $0.10: a tenth of the budget
                "messages": [{"role": "user", "content": "Spend it all"}],
            }

            def one(i: int) -> int:
                reply = clients[i % 2].post(
                    "https://api.openai.com/v1/chat/completions",
                    json=body,
                    # The answer costs as much as its worst case, and stays in flight a while.
                    headers={
                        "authorization": "Bearer sk-test",
                        "x-fake-behavior": "chunks=100 slow=300",
                    },
                )
                if reply.status_code == 429:
                    assert reply.headers["x-should-retry"] == "false"
                return reply.status_code

            with ThreadPoolExecutor(max_workers=100) as pool:
                statuses = list(pool.map(one, range(100)))
            assert statuses.count(200) == 10, statuses
            assert statuses.count(429) == 90

            settled(gateways[0], "provider:openai/day", url)
            row = budget_status(gateways[0], "--state", url)["provider:openai/day"]
            # Real cost equals the estimate here, so the cap holds to the cent.
            assert (row["spent"], row["reserved"]) == (pytest.approx(1.0), 0)
            assert row["spent"] <= 1.0 + 1e-9
            deadline = time.monotonic() + 5
            while not _Hook.calls and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
            # Crossing 80% is announced once, though two gateways saw it.
            assert [c["budget"] for c in _Hook.calls] == ["provider:openai/day"]
        finally:
            for proc in procs:
                stop(proc)
            hook.shutdown()
