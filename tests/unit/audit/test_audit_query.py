"""``tollhouse audit`` and the read-only query functions behind it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.unit.audit.audit_helpers import count, exchange, held_open
from tollhouse.audit import query, store
from tollhouse.audit.spool import SPOOL_NAME, Spool
from tollhouse.audit.writer import AuditWriter
from tollhouse.cli import main

T0 = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
T1 = datetime(2025, 5, 1, 17, 30, tzinfo=UTC)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """An audit log with three exchanges over two providers, one of them blocked."""
    w = AuditWriter(tmp_path)
    w.start()
    w.submit("exchanges", exchange(id="a1", started_at=T0, tokens_in=100, tokens_out=10,
                                   cost_usd=0.5))  # fmt: skip
    w.submit("exchanges", exchange(id="a2", started_at=T1, tokens_in=200, tokens_out=20,
                                   cost_usd=1.5))  # fmt: skip
    w.submit("exchanges", exchange(id="b1", started_at=T0, provider="anthropic",
                                   model_answered="claude-sonnet-4", tokens_in=50, tokens_out=5,
                                   cost_usd=0.25, decision="block"))  # fmt: skip
    w.close()
    return tmp_path


def audit(*argv: str) -> int:
    return main(["audit", *argv])


def test_run_query_returns_columns_and_rows(data: Path) -> None:
    columns, rows = query.run_query(data, "SELECT id, tokens_in FROM exchanges ORDER BY id")
    assert columns == ["id", "tokens_in"]
    assert rows == [("a1", 100), ("a2", 200), ("b1", 50)]


def test_writes_are_refused_and_change_nothing(data: Path) -> None:
    with pytest.raises(query.QueryError, match="read-only"):
        query.run_query(data, "DELETE FROM exchanges")
    with pytest.raises(query.QueryError, match="read-only"):
        query.run_query(data, "SELECT 1; DROP TABLE exchanges")
    assert count(data / store.DB_NAME) == (3, 3)


def test_queries_cannot_touch_other_files(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "stolen.csv"
    with pytest.raises(query.QueryError, match="disabled"):
        query.run_query(data, f"COPY exchanges TO '{out}'")
    assert not out.exists()
    with pytest.raises(query.QueryError, match="disabled"):
        query.run_query(data, "SELECT * FROM read_csv('/etc/passwd')")


def test_summary_groups_by_provider_and_model(data: Path) -> None:
    s = query.summary(data)
    assert [(u.provider, u.model, u.exchanges) for u in s.rows] == [
        ("openai", "gpt-4o-2024-08-06", 2),
        ("anthropic", "claude-sonnet-4", 1),
    ]
    assert s.total is not None
    assert (s.total.exchanges, s.total.blocked, s.total.tokens_in, s.total.tokens_out) == (
        3,
        1,
        350,
        35,
    )
    assert s.total.cost_usd == pytest.approx(2.25)
    assert (s.first_at, s.last_at) == (T0, T1)
    assert s.spool_pending == 0


def test_cli_query_prints_a_table(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert audit("--data", str(data), "SELECT id, provider, started_at FROM exchanges") == 0
    out = capsys.readouterr().out
    for text in ("id", "provider", "started_at", "a1", "b1", "anthropic", T0.isoformat(), "3 rows"):
        assert text in out


def test_cli_query_json_lines(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT id, started_at, sum(cost_usd)::DECIMAL(10, 2) AS cost FROM exchanges GROUP BY ALL"
    assert audit("--data", str(data), "--json", sql + " ORDER BY id") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0] == {"id": "a1", "started_at": T0.isoformat(), "cost": 0.5}
    assert [line["id"] for line in lines] == ["a1", "a2", "b1"]
    assert datetime.fromisoformat(lines[1]["started_at"]) == T1


def test_cli_summary(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert audit("--data", str(data)) == 0
    out = capsys.readouterr().out
    for text in ("openai", "gpt-4o-2024-08-06", "anthropic", "total", "2.2500", T0.isoformat()):
        assert text in out
    assert "spool" not in out


def test_cli_summary_json_and_spool_backlog(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Spool(data / SPOOL_NAME).append([("exchanges", exchange()), ("exchanges", exchange())])
    assert audit("--data", str(data)) == 0
    assert "2 row(s) waiting in the spool" in capsys.readouterr().out

    assert audit("--data", str(data), "--json") == 0
    *groups, meta = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [g["provider"] for g in groups] == ["openai", "anthropic"]
    assert meta["total"]["exchanges"] == 3 and meta["spool_pending"] == 2


def test_cli_refuses_writes(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert audit("--data", str(data), "DELETE FROM exchanges") == 2
    err = capsys.readouterr().err
    assert "read-only" in err and "Traceback" not in err
    assert count(data / store.DB_NAME) == (3, 3)


def test_cli_sql_error(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert audit("--data", str(data), "SELECT nope FROM exchanges") == 2
    err = capsys.readouterr().err
    assert "nope" in err and "Traceback" not in err


def test_cli_without_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A deployment that has recorded nothing yet: empty results, exit 0, one hint on stderr.
    assert audit("--data", str(tmp_path / "empty")) == 0
    captured = capsys.readouterr()
    assert str(tmp_path / "empty" / store.DB_NAME) in captured.err
    assert "creates it on the first exchange" in captured.err
    assert audit("--data", str(tmp_path / "empty"), "--json", "select * from exchanges") == 0
    assert capsys.readouterr().out == ""  # no lines
    assert (
        audit("--data", str(tmp_path / "empty"), "--json", "select count(*) as n from findings")
        == 0
    )
    assert json.loads(capsys.readouterr().out) == {"n": 0}
    assert not (tmp_path / "empty").exists()  # reading never creates anything


def test_cli_when_the_database_stays_locked(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with held_open(data / store.DB_NAME, read_only=False):
        assert audit("--data", str(data), "--wait", "0.3", "SELECT 1") == 2
    err = capsys.readouterr().err
    assert "locked" in err and "--wait" in err and "Traceback" not in err


def test_cli_corrupt_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / store.DB_NAME).write_bytes(b"garbage" * 1000)
    assert audit("--data", str(tmp_path)) == 2
    assert "not a valid DuckDB database file" in capsys.readouterr().err


def test_a_runaway_query_is_stopped_so_the_gateway_can_write_again(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    slow = "SELECT count(*) FROM range(100000000000) a"  # minutes of work
    code = main(["audit", "--data", str(data), "--timeout", "0.5", slow])
    assert code == 2
    err = capsys.readouterr().err
    assert "ran for more than 0.5 s and was stopped" in err
    # The database is free again: a writer gets in at once.
    with store.connect(data / "audit.duckdb") as con:
        assert con.execute("SELECT count(*) FROM exchanges").fetchone()[0] >= 1
