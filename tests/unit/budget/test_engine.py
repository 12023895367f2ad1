"""The engine: worst-case pricing, reserve-then-settle, warn, block, downgrade, webhooks."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.unit.budget.budget_helpers import policy_from
from tollhouse.budget.engine import BudgetEngine, Request
from tollhouse.budget.sqlite_store import SqliteStore
from tollhouse.exchange import Usage
from tollhouse.pricing import PriceBook, PriceOverride

# big: $10 in / $100 out per Mtok; small: $1 / $10. With 1000 tokens in and at most 1000 out,
# big's worst case is $0.11 and small's $0.011.
PRICES = PriceBook(
    [
        PriceOverride("big", None, Decimal(10), Decimal(100)),
        PriceOverride("small", None, Decimal(1), Decimal(10)),
    ]
)
NOW = datetime(2026, 5, 14, 12, tzinfo=UTC).timestamp()


def ask(model="big", **kw) -> Request:
    base = dict(provider="openai", model=model, operation="chat", tokens_in=1000)
    base["max_output_tokens"] = kw.pop("max_output_tokens", 1000)
    return Request(**{**base, **kw})


@pytest.fixture
def make(tmp_path):
    engines = []

    def make(text: str) -> BudgetEngine:
        store = SqliteStore(tmp_path / f"b{len(engines)}.sqlite3")
        engine = BudgetEngine(policy_from(tmp_path, text), store, clock=lambda: NOW)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def spent(engine: BudgetEngine) -> dict[str, tuple[int, int]]:
    engine.flush()
    return {s.key: (s.spent, s.reserved) for s in engine.store.states(NOW)}


def test_reserves_the_worst_case_and_settles_the_real_cost(make):
    engine = make("budgets:\n  - {period: month, limit_usd: 1}\n")
    verdict = engine.admit(ask(), PRICES)
    assert verdict.blocked is None and verdict.model == "big"
    assert spent(engine) == {"all/month": (0, 110_000)}  # micro-USD
    verdict.hold.settle(Decimal("0.0123"), Usage(100, 100))
    verdict.hold.release()  # a second close is ignored
    assert spent(engine) == {"all/month": (12_300, 0)}


def test_the_default_maximum_applies_when_the_client_sets_none(make):
    engine = make("defaults: {max_output_tokens: 10}\nbudgets:\n  - {period: day, limit_usd: 1}\n")
    engine.admit(ask(max_output_tokens=None), PRICES)
    assert spent(engine)["all/day"] == (0, 11_000)  # 1000 x $10 + 10 x $100 per Mtok


def test_warns_at_the_threshold_and_blocks_at_the_cap(make):
    engine = make("budgets:\n  - {scope: {provider: openai}, period: month, limit_usd: 0.5}\n")
    verdicts = [engine.admit(ask(), PRICES) for _ in range(5)]
    assert [v.warnings for v in verdicts[:3]] == [[], [], []]
    assert [w.header for w in verdicts[3].warnings] == [
        "warn; budget=provider:openai/month; used=88%"
    ]
    blocked = verdicts[4]
    assert blocked.hold is None and blocked.budget == "provider:openai/month"
    assert blocked.blocked == (
        "budget provider:openai/month has $0.06 left of $0.50, less than this request's worst "
        "case of $0.11; it resets at 2026-06-01T00:00:00+00:00 (UTC)"
    )
    # Settling with the real, lower cost makes room again.
    verdicts[0].hold.settle(Decimal("0.01"), Usage(1000, 90))
    engine.flush()
    assert engine.admit(ask(), PRICES).blocked is None


def test_downgrades_along_the_chain_then_blocks(make):
    engine = make(
        "chains: {cheaper: [big, small]}\n"
        "budgets:\n  - {period: day, limit_usd: 0.15, on_cap: downgrade, chain: cheaper}\n"
    )
    first, second = engine.admit(ask(), PRICES), engine.admit(ask(), PRICES)
    assert first.model == "big" and not first.downgrades
    assert second.model == "small" and second.blocked is None
    (step,) = second.downgrades
    assert (step.requested, step.sent, step.budget) == ("big", "small", "all/day")
    assert step.header == "downgrade; budget=all/day; from=big; to=small"
    assert spent(engine)["all/day"] == (0, 121_000)
    for _ in range(2):
        assert engine.admit(ask(), PRICES).model == "small"
    last = engine.admit(ask(), PRICES)  # $0.143 committed: not even small fits
    assert last.blocked is not None and last.blocked.startswith(
        "budget all/day has $0.007 left of $0.15, less than this request's worst case of $0.011;"
    )


def test_downgrading_can_start_before_the_cap(make):
    engine = make(
        "chains: {cheaper: [big, small]}\n"
        "budgets:\n  - {period: day, limit_usd: 1, on_cap: downgrade, chain: cheaper,"
        " downgrade_at: 20}\n"
    )
    assert engine.admit(ask(), PRICES).model == "big"
    assert engine.admit(ask(), PRICES).model == "small"  # 0.22 would pass 20% of $1


def test_a_block_budget_blocks_even_when_another_would_downgrade(make):
    engine = make(
        "chains: {cheaper: [big, small]}\n"
        "budgets:\n"
        "  - {scope: {model: big}, period: day, limit_usd: 0.1,"
        " on_cap: downgrade, chain: cheaper}\n"
        "  - {scope: {team: '*'}, period: day, limit_usd: 0.01}\n"
    )
    downgraded = engine.admit(ask(), PRICES)  # no team: the team budget does not apply
    assert downgraded.model == "small" and downgraded.hold is None
    blocked = engine.admit(ask(team="search"), PRICES)
    assert blocked.blocked is not None and blocked.budget == "team:search/day"


def test_token_budgets_count_tokens(make):
    engine = make("budgets:\n  - {scope: {app: bot}, period: week, limit_tokens: 5000}\n")
    assert engine.admit(ask(app="other"), PRICES).hold is None
    verdict = engine.admit(ask(app="bot"), PRICES)
    assert spent(engine) == {"app:bot/week": (0, 2000)}
    verdict.hold.settle(None, Usage(900, 40))
    assert spent(engine) == {"app:bot/week": (940, 0)}


def test_an_unpriced_model_is_blocked_under_a_usd_budget_unless_allowed(make):
    blocked = make("budgets:\n  - {period: day, limit_usd: 1}\n").admit(ask("mystery"), PRICES)
    assert blocked.budget is None and "no price for model 'mystery'" in blocked.blocked
    allowed = make("defaults: {unpriced: allow}\nbudgets:\n  - {period: day, limit_usd: 1}\n")
    verdict = allowed.admit(ask("mystery"), PRICES)
    assert verdict.blocked is None
    verdict.hold.settle(None, Usage(10, 10))  # still unpriced: charged what was held, 0
    assert spent(allowed)["all/day"] == (0, 0)


def test_unbilled_operations_and_embeddings(make):
    engine = make("budgets:\n  - {period: day, limit_tokens: 100000}\n")
    assert not engine.applies(ask(operation="count_tokens"))
    engine.admit(ask(operation="embeddings"), PRICES)
    assert spent(engine)["all/day"] == (0, 1000)  # no output tokens to reserve


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):
        length = int(self.headers["content-length"])
        _Receiver.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver(monkeypatch):
    for key in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(key, raising=False)
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Receiver.received
    server.shutdown()


def test_the_webhook_hears_once_per_budget_and_period(make, receiver):
    url, received = receiver
    engine = make(f"notify: {{webhook: '{url}'}}\nbudgets:\n  - {{period: month, limit_usd: 1}}\n")
    for _ in range(9):  # 0.88 after the 8th, 0.99 after the 9th: both above 80%
        assert engine.admit(ask(), PRICES).blocked is None
    deadline = time.monotonic() + 5
    while not received and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    assert len(received) == 1
    assert received[0] | {"used": None} == {
        "event": "budget.warn",
        "budget": "all/month",
        "period": "2026-05",
        "used_percent": 88,
        "warn_at_percent": 80.0,
        "unit": "usd",
        "limit": 1.0,
        "used": None,
        "resets_at": "2026-06-01T00:00:00+00:00",
    }


def test_several_answers_reserve_several_worst_cases(make):
    # n=3 answers of up to 1000 tokens each: $0.01 in + 3 x $0.10 out = $0.31 on a $0.25 budget.
    engine = make("budgets:\n  - {period: month, limit_usd: 0.25}\n")
    assert engine.admit(ask(choices=3), PRICES).blocked is not None
    assert engine.admit(ask(choices=1), PRICES).blocked is None
