"""Attacks on the budgets: a second gateway on one data folder, hostile request sizes, broken
usage, and secrets in the messages an operator reads."""

from __future__ import annotations

import logging
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from tests.unit.budget.budget_helpers import policy_from
from tests.unit.budget.test_engine import NOW, PRICES, ask
from tollhouse.budget.engine import BudgetEngine
from tollhouse.budget.notify import Notifier
from tollhouse.budget.sqlite_store import SqliteStore
from tollhouse.budget.store import Charge, StateError, open_store
from tollhouse.exchange import Usage


def _engine(tmp_path, text: str) -> BudgetEngine:
    store = SqliteStore(tmp_path / "budget.sqlite3")
    return BudgetEngine(policy_from(tmp_path, text), store, clock=lambda: NOW)


def _states(engine: BudgetEngine) -> dict[str, tuple[int, int]]:
    engine.flush()
    return {s.key: (s.spent, s.reserved) for s in engine.store.states(NOW)}


def test_a_second_gateway_on_the_same_data_folder_is_refused(tmp_path):
    # The embedded store drops every hold when it opens (its holds' process is gone): a second
    # gateway opening it would wipe the first one's reservations and let both overspend.
    first = SqliteStore(tmp_path / "budget.sqlite3")
    c = Charge("all/day", "2026-05-14", "all/day", 100, 60, 80, keep_until=NOW + 86400)
    assert first.reserve("h1", [c], NOW, NOW + 3600).ok
    with pytest.raises(StateError, match="another gateway"):
        SqliteStore(tmp_path / "budget.sqlite3")
    assert not first.reserve("h2", [c], NOW, NOW + 3600).ok  # h1 still holds its 60
    reader = SqliteStore(tmp_path / "budget.sqlite3", read_only=True)  # `tollhouse budget`
    assert [s.reserved for s in reader.states(NOW)] == [60]
    reader.close()
    first.close()
    SqliteStore(tmp_path / "budget.sqlite3").close()  # once the first is gone, a new one may


def test_a_negative_max_tokens_cannot_free_budget_for_others(tmp_path):
    engine = _engine(tmp_path, "budgets:\n  - {period: day, limit_tokens: 3000}\n")
    try:
        hostile = engine.admit(ask(max_output_tokens=-(10**9)), PRICES)
        assert hostile.blocked is None
        assert _states(engine)["all/day"] == (0, 1000)  # its prompt, never less than nothing
        assert engine.admit(ask(), PRICES).blocked is None  # 1000 + 2000 = the cap
        assert engine.admit(ask(), PRICES).blocked is not None
    finally:
        engine.close()


def test_a_negative_price_cannot_free_budget(tmp_path):
    from tollhouse.pricing import PriceBook, PriceOverride

    prices = PriceBook([PriceOverride("big", None, Decimal(-1000), Decimal(-1000))])
    engine = _engine(tmp_path, "budgets:\n  - {period: day, limit_usd: 1}\n")
    try:
        engine.admit(ask(), prices)
        assert _states(engine)["all/day"][1] >= 0
    finally:
        engine.close()


@pytest.mark.parametrize(
    ("cost", "usage", "charged"),
    [
        (Decimal("NaN"), Usage(10, 10), 110_000),  # cannot be priced: the worst case held
        (Decimal("Infinity"), Usage(10, 10), 110_000),
        (Decimal("-5"), Usage(10, 10), 0),  # never a refund below nothing
    ],
    ids=["nan", "infinite", "negative"],
)
def test_broken_usage_still_closes_the_hold(tmp_path, cost, usage, charged):
    engine = _engine(tmp_path, "budgets:\n  - {period: day, limit_usd: 1}\n")
    try:
        verdict = engine.admit(ask(), PRICES)
        verdict.hold.settle(cost, usage)
        assert _states(engine)["all/day"] == (charged, 0)
    finally:
        engine.close()


def test_negative_token_usage_is_not_a_refund(tmp_path):
    engine = _engine(tmp_path, "budgets:\n  - {period: day, limit_tokens: 5000}\n")
    try:
        engine.admit(ask(), PRICES).hold.settle(None, Usage(-4000, 10))
        assert _states(engine)["all/day"] == (0, 0)
    finally:
        engine.close()


def test_a_redis_password_never_appears_in_errors(tmp_path):
    with pytest.raises(StateError) as caught:
        open_store("redis://:hunter2-secret@127.0.0.1:1/0", tmp_path)
    assert "hunter2" not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)


class _Redirect(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_POST(self):
        _Redirect.hits.append(self.path)
        self.send_response(302)
        self.send_header("location", "/elsewhere?token=1")
        self.send_header("content-length", "0")
        self.end_headers()

    do_GET = do_POST

    def log_message(self, *args):
        pass


def test_the_webhook_does_not_follow_redirects_and_keeps_its_url_out_of_logs(monkeypatch, caplog):
    for key in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(key, raising=False)
    _Redirect.hits = []
    server = HTTPServer(("127.0.0.1", 0), _Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/hooks/T000/B000/XXXXsecretXXXX"
    try:
        with caplog.at_level(logging.DEBUG, logger="tollhouse.budget"):
            notifier = Notifier(url, attempts=2)
            notifier.notify({"event": "budget.warn", "budget": "all/day"})
            notifier.close(timeout=10)
    finally:
        server.shutdown()
    assert _Redirect.hits == ["/hooks/T000/B000/XXXXsecretXXXX"] * 2  # never /elsewhere
    assert caplog.records and "XXXXsecretXXXX" not in caplog.text
    assert f"127.0.0.1:{server.server_port}" in caplog.text
