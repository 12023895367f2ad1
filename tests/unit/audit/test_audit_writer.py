from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from tests.unit.audit.audit_helpers import count, exchange, held_open
from tollhouse.audit import store
from tollhouse.audit.spool import REJECTED_NAME, SPOOL_NAME, Spool, count_lines
from tollhouse.audit.writer import AuditWriter


def test_rows_written_in_batches_appear_in_queries(tmp_path: Path, writer: AuditWriter) -> None:
    rows = [exchange(tokens_in=i) for i in range(230)]  # 5 batches of 50
    for row in rows:
        writer.submit("exchanges", row)
    assert writer.flush(10)
    db = tmp_path / store.DB_NAME
    assert count(db) == (230, 230)
    assert count(db, "SELECT sum(tokens_in) FROM exchanges") == (sum(range(230)),)
    stats = writer.stats
    assert stats.rows_written == 230 and stats.batches >= 5 and stats.rows_spooled == 0
    assert stats.alive and stats.last_batch_ms is not None


def test_values_round_trip_with_their_types(tmp_path: Path, writer: AuditWriter) -> None:
    at = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    row = exchange(id="ex-1", started_at=at, stream=True, status=429, cost_usd=0.25)
    writer.submit("exchanges", row)
    writer.submit("events", {"exchange_id": "ex-1", "at": at, "stage": "budget", "kind": "warn",
                             "detail": {"budget": "team-a", "used": 0.8}})  # fmt: skip
    writer.submit("findings", {"exchange_id": "ex-1", "stage": "dlp", "detector": "email",
                               "entity_type": "EMAIL", "action": "redact", "count": 2,
                               "location": "messages[0].content"})  # fmt: skip
    writer.submit("connections", {"at": at, "client_addr": "10.0.0.9", "sni": "chatgpt.com",
                                  "handling": "sni-only", "bytes_up": 10, "bytes_down": 2000,
                                  "duration_ms": 1.5})  # fmt: skip
    writer.close()
    con = duckdb.connect(str(tmp_path / store.DB_NAME), read_only=True)
    try:
        got = con.execute(
            "SELECT started_at, stream, status, cost_usd FROM exchanges WHERE id = 'ex-1'"
        ).fetchone()
        assert got == (at, True, 429, 0.25)
        detail = con.execute("SELECT detail->>'budget', detail.used FROM events").fetchone()
        assert detail == ("team-a", "0.8")
        assert con.execute("SELECT count, entity_type FROM findings").fetchone() == (2, "EMAIL")
        assert con.execute("SELECT sni, bytes_down FROM connections").fetchone() == (
            "chatgpt.com",
            2000,
        )
        ids = con.execute("SELECT id FROM events UNION ALL SELECT id FROM connections").fetchall()
        assert all(i for (i,) in ids)  # generated when the row had none
    finally:
        con.close()


def test_close_flushes_everything_and_later_rows_wait_in_the_spool(tmp_path: Path) -> None:
    w = AuditWriter(tmp_path, batch_size=500, flush_interval=60)  # would not flush by itself
    w.start()
    for _ in range(120):
        w.submit("exchanges", exchange())
    w.close()
    assert count(tmp_path / store.DB_NAME) == (120, 120)
    assert not w.stats.alive

    w.submit("exchanges", exchange(id="late"))  # after close: never lost
    assert count_lines(tmp_path / SPOOL_NAME) == 1
    w2 = AuditWriter(tmp_path, flush_interval=0.05)
    w2.start()
    assert w2.flush(5)
    w2.close()
    assert count(tmp_path / store.DB_NAME) == (121, 121)
    assert count_lines(tmp_path / SPOOL_NAME) == 0


def test_another_process_holding_the_file_blocks_writing(tmp_path: Path) -> None:
    """The premise of the design, checked against the installed duckdb: even a read-only open
    elsewhere keeps this process from opening the file for writing."""
    db = tmp_path / "x.duckdb"
    duckdb.connect(str(db)).close()
    with held_open(db, read_only=True), pytest.raises(duckdb.IOException, match="lock"):
        duckdb.connect(str(db))


def test_locked_database_spools_then_ingests_exactly_once(
    tmp_path: Path, writer: AuditWriter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "tollhouse.audit")
    db = tmp_path / store.DB_NAME
    writer.submit("exchanges", exchange(id="before"))
    assert writer.flush(5)

    ids = [f"locked-{i}" for i in range(120)]
    with held_open(db, read_only=True):
        for i in ids:
            writer.submit("exchanges", exchange(id=i))
        assert writer.flush(5)
        assert count_lines(tmp_path / SPOOL_NAME) == 120
        assert writer.stats.rows_spooled == 120 and writer.stats.spool_pending == 120
        assert "lock" in (writer.stats.last_error or "")
    assert "spooling rows to" in caplog.text

    writer.submit("exchanges", exchange(id="after"))
    assert writer.flush(5)
    assert count(db) == (122, 122)
    assert count_lines(tmp_path / SPOOL_NAME) == 0
    assert writer.stats.spool_pending == 0
    assert "spool drained: 120 row(s)" in caplog.text


def test_spool_is_drained_when_idle_once_the_lock_goes(tmp_path: Path, writer: AuditWriter) -> None:
    db = tmp_path / store.DB_NAME
    writer.submit("exchanges", exchange())
    assert writer.flush(5)
    with held_open(db):
        writer.submit("exchanges", exchange())
        assert writer.flush(5)
    assert writer.flush(5)  # no new rows: the flush itself retries the spool
    assert count(db) == (2, 2)


def test_replaying_a_spool_after_a_crash_adds_nothing_twice(tmp_path: Path) -> None:
    """A crash between the database commit and the spool truncate leaves rows in both."""
    rows = [exchange(id=f"r{i}") for i in range(10)]
    con = store.connect(tmp_path / store.DB_NAME)
    store.insert(con, "exchanges", rows[:6])
    con.close()
    Spool(tmp_path / SPOOL_NAME).append(("exchanges", r) for r in rows)
    with (tmp_path / SPOOL_NAME).open("a") as f:
        f.write('{"table": "exchanges", "row": {"id": "cut-sh')  # a write cut short

    w = AuditWriter(tmp_path, flush_interval=0.05)
    w.start()
    assert w.flush(5)
    w.close()
    assert count(tmp_path / store.DB_NAME) == (10, 10)
    assert count_lines(tmp_path / SPOOL_NAME) == 0
    assert "cut-sh" in (tmp_path / REJECTED_NAME).read_text()


def test_corrupt_database_file_spools_with_a_clear_message(
    tmp_path: Path, writer: AuditWriter, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / store.DB_NAME
    db.write_bytes(b"this is not a database" * 100)
    for i in range(5):
        writer.submit("exchanges", exchange(id=f"c{i}"))
    assert writer.flush(5)
    assert count_lines(tmp_path / SPOOL_NAME) == 5
    assert "not a valid DuckDB database file" in caplog.text
    assert str(db) in caplog.text and "spooling rows to" in caplog.text
    spooled = [json.loads(line) for line in (tmp_path / SPOOL_NAME).read_text().splitlines()]
    assert spooled[0]["table"] == "exchanges"
    assert datetime.fromisoformat(spooled[0]["row"]["started_at"])  # ISO strings

    db.rename(tmp_path / "audit.corrupt")  # the operator moves the bad file away
    assert writer.flush(5)
    assert count(db) == (5, 5)


def test_a_bad_row_is_kept_aside_and_the_rest_of_its_batch_is_written(
    tmp_path: Path, writer: AuditWriter
) -> None:
    writer.submit("exchanges", exchange(id="good-1"))
    writer.submit("exchanges", exchange(id="bad", tokens_in="many"))
    writer.submit("exchanges", exchange(id="good-2"))
    assert writer.flush(5)
    assert count(tmp_path / store.DB_NAME, "SELECT list(id ORDER BY id) FROM exchanges") == (
        ["good-1", "good-2"],
    )
    rejected = json.loads((tmp_path / REJECTED_NAME).read_text())
    assert rejected["row"]["id"] == "bad" and "Conversion" in rejected["error"]
    assert writer.stats.rows_rejected == 1


def test_submit_never_raises(writer: AuditWriter, caplog: pytest.LogCaptureFixture) -> None:
    writer.submit("no_such_table", {"id": "x"})
    writer.submit("exchanges", None)  # type: ignore[arg-type]
    writer.submit("exchanges", {"id": "y", "no_such_column": 1})
    assert writer.flush(5)
    assert "unknown table" in caplog.text and "no_such_column" in caplog.text


def test_if_the_thread_dies_rows_go_to_the_spool(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    w = AuditWriter(tmp_path, flush_interval=0.05)

    def bug(batch: object) -> None:
        raise RuntimeError("a bug in the writer")

    w._write = bug  # type: ignore[method-assign]
    w.start()
    w.submit("exchanges", exchange(id="in-flight"))
    assert w.flush(5)
    assert not w.stats.alive and "writer thread died" in caplog.text
    w.submit("exchanges", exchange(id="orphan"))
    assert w.flush(1)
    w.close()
    assert count_lines(tmp_path / SPOOL_NAME) == 2


def test_the_data_folder_is_private_to_the_gateway(tmp_path):
    from tollhouse.audit.writer import AuditWriter

    data = tmp_path / "fresh"
    writer = AuditWriter(data)
    writer.start()
    try:
        assert data.stat().st_mode & 0o077 == 0  # prompts are in there
    finally:
        writer.close()


def test_a_new_batch_lands_even_while_the_spool_cannot_be_drained(tmp_path, monkeypatch):
    # A gateway stopping in the middle of a long spool drain must not lose the batch it holds:
    # the batch goes in first, and the spool stays on disk for the next run.
    from tests.unit.audit.audit_helpers import count, exchange
    from tollhouse.audit.writer import AuditWriter

    writer = AuditWriter(tmp_path, flush_interval=0.05)
    writer.spool.append([("exchanges", exchange())])

    def stuck(*args, **kwargs):
        raise OSError("disk hiccup while reading the spool")

    monkeypatch.setattr(writer.spool, "drain", stuck)
    writer.start()
    try:
        writer.submit("exchanges", exchange())
        assert writer.flush(timeout=10)
    finally:
        writer.close()
    assert count(tmp_path / "audit.duckdb")[0] == 1
    assert writer.spool.count() == 1
