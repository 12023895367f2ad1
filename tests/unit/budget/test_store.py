"""Both state stores keep one contract: check-and-reserve is atomic across every budget."""

from __future__ import annotations

import threading
import time
import uuid

from tollhouse.budget.sqlite_store import SqliteStore
from tollhouse.budget.store import Charge

NOW = 1_750_000_000.0
LATER = NOW + 3600
KEEP = time.time() + 86400  # Redis expires state by the real clock, not the test's NOW


def charge(key="team:a/month", limit=100, amount=10, warn=80, period="2026-05") -> Charge:
    return Charge(key, period, key, limit, amount, warn, keep_until=KEEP)


def spent_of(store, key="team:a/month"):
    return {s.key: (s.spent, s.reserved) for s in store.states(NOW)}.get(key)


def test_reserve_then_settle_moves_the_hold_into_spend(store):
    c = charge()
    admission = store.reserve("h1", [c], NOW, LATER)
    assert admission.ok and admission.used == (10,) and admission.first_warn == (False,)
    assert spent_of(store) == (0, 10)
    store.settle("h1", [c], [7])
    assert spent_of(store) == (7, 0)


def test_release_gives_the_hold_back(store):
    c = charge()
    store.reserve("h1", [c], NOW, LATER)
    store.settle("h1", [c], [0])
    assert spent_of(store) == (0, 0)


def test_a_reservation_that_does_not_fit_is_refused_and_holds_nothing(store):
    team, model = charge("team:a/month", limit=100), charge("model:m/day", limit=15)
    assert store.reserve("h1", [team, model], NOW, LATER).ok
    refused = store.reserve("h2", [team, model], NOW, LATER)
    assert not refused.ok
    assert (refused.failed, refused.spent, refused.reserved) == (1, 0, 10)
    # The team budget had room, but nothing was held there either: all or nothing.
    assert spent_of(store, "team:a/month") == (0, 10)


def test_a_full_budget_refuses_even_a_free_request(store):
    c = charge(limit=10, amount=10)
    assert store.reserve("h1", [c], NOW, LATER).ok
    assert not store.reserve("h2", [charge(limit=10, amount=0)], NOW, LATER).ok


def test_the_warn_mark_is_reported_first_once(store):
    c = charge(amount=40, warn=80)
    assert store.reserve("h1", [c], NOW, LATER).first_warn == (False,)
    second = store.reserve("h2", [c], NOW, LATER)
    assert second.used == (80,) and second.first_warn == (True,)
    store.settle("h2", [c], [0])
    assert store.reserve("h3", [c], NOW, LATER).first_warn == (False,)


def test_expired_holds_stop_counting(store):
    c = charge(limit=10, amount=10)
    assert store.reserve("dead", [c], NOW, NOW + 5).ok
    assert not store.reserve("h2", [c], NOW + 1, LATER).ok
    assert store.reserve("h3", [c], NOW + 6, LATER).ok
    # The expired hold's gateway settles after all: its spend still counts.
    store.settle("dead", [c], [3])
    assert {s.key: s.spent for s in store.states(NOW + 6)}["team:a/month"] == 3


def test_periods_are_separate(store):
    may, june = charge(period="2026-05", limit=10, amount=10), charge(period="2026-06", limit=10)
    assert store.reserve("h1", [may], NOW, LATER).ok
    assert store.reserve("h2", [june], NOW, LATER).ok
    assert sorted((s.period, s.reserved) for s in store.states(NOW)) == [
        ("2026-05", 10),
        ("2026-06", 10),
    ]


def test_concurrent_reservations_never_exceed_the_limit(store):
    c = charge(limit=1000, amount=7)
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            ok = store.reserve(uuid.uuid4().hex, [c], NOW, LATER).ok
            with lock:
                results.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 1000 // 7
    assert spent_of(store) == (0, 7 * (1000 // 7))


def test_embedded_spend_survives_a_restart_and_old_holds_do_not(tmp_path):
    path = tmp_path / "budget.sqlite3"
    c = charge()
    first = SqliteStore(path)
    first.reserve("h1", [c], NOW, LATER)
    first.settle("h1", [c], [30])
    first.reserve("h2", [c], NOW, LATER)  # in flight when the gateway stops
    first.close()
    second = SqliteStore(path)
    assert spent_of(second) == (30, 0)
    reader = SqliteStore(path, read_only=True)
    assert spent_of(reader) == (30, 0)
    second.close()
    reader.close()


def test_a_read_only_store_without_a_file_is_empty(tmp_path):
    reader = SqliteStore(tmp_path / "missing.sqlite3", read_only=True)
    assert reader.states(NOW) == []
    assert not (tmp_path / "missing.sqlite3").exists()
