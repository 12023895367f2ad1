"""``tollhouse budget`` reads the store next to a running gateway and shows each budget."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from tollhouse.budget.periods import window
from tollhouse.budget.sqlite_store import SqliteStore
from tollhouse.budget.store import Charge
from tollhouse.cli import main

RULES = """\
budgets:
  - {scope: {team: payments}, period: month, limit_usd: 100}
  - {scope: {team: "*"}, period: month, limit_usd: 10}
  - {scope: {model: gpt-4o}, period: day, limit_tokens: 1000}
"""


def test_json_and_table(tmp_path, capsys):
    rules, data = tmp_path / "rules", tmp_path / "data"
    rules.mkdir()
    (rules / "budgets.yaml").write_text(RULES)
    month = window("month", __import__("zoneinfo").ZoneInfo("UTC"), datetime.now(UTC)).id
    gateway = SqliteStore(data / "budget.sqlite3")  # the gateway's own handle stays open
    now = time.time()
    for key, rule, spent in [
        ("team:payments/month", "team:payments/month", 85_000_000),
        ("team:search/month", "team:*/month", 2_500_000),
    ]:
        charge = Charge(key, month, rule, 10**12, 1, 10**12, now + 86400)
        gateway.reserve("h-" + key, [charge], now, now + 600)
        gateway.settle("h-" + key, [charge], [spent])
    gateway.reserve(
        "held",
        [Charge("team:search/month", month, "team:*/month", 10**12, 500_000, 10**12, now + 86400)],
        now,
        now + 600,
    )

    assert main(["budget", "--rules", str(rules), "--data", str(data), "--json"]) == 0
    rows = {r["budget"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(rows) == {"team:payments/month", "team:search/month", "model:gpt-4o/day"}
    payments, search = rows["team:payments/month"], rows["team:search/month"]
    assert (payments["spent"], payments["reserved"], payments["used_percent"]) == (85.0, 0.0, 85.0)
    assert (search["spent"], search["reserved"], search["remaining"]) == (2.5, 0.5, 7.0)
    assert search["rule"] == "team:*/month" and search["period"] == month
    assert rows["model:gpt-4o/day"]["unit"] == "tokens" and rows["model:gpt-4o/day"]["spent"] == 0

    assert main(["budget", "--rules", str(rules), "--data", str(data)]) == 0
    table = capsys.readouterr().out
    assert (
        "team:payments/month" in table
        and "85.0%" in table
        and "$15.00" in table
        and "$100.00" in table
    )
    gateway.close()


def test_a_bad_budgets_file_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "budgets.yaml").write_text("budgets:\n  - {period: fortnight, limit_usd: 1}\n")
    assert main(["budget", "--rules", str(tmp_path), "--data", str(tmp_path)]) == 2
    assert "budgets.yaml:2: budgets[0].period" in capsys.readouterr().err


def test_no_state_under_data_says_so(tmp_path, capsys):
    # A wrong --data must not pass for "nothing spent yet" without a word.
    rules, data = tmp_path / "rules", tmp_path / "elsewhere"
    rules.mkdir()
    (rules / "budgets.yaml").write_text(RULES)
    assert main(["budget", "--rules", str(rules), "--data", str(data), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out.splitlines()[0])["spent"] == 0
    assert str(data / "budget.sqlite3") in err and "--data" in err and err.count("\n") == 1
    assert not data.exists()
