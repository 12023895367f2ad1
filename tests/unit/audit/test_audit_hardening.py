"""The audit log under attack, and as evidence: what a query may do, what the writer must never
lose or leak, and what the analyst reads back."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import stat
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from mitmproxy.test import tflow

from addons._flow import KEY
from addons.audit import Audit
from tests.unit.audit.audit_helpers import count, exchange, held_open
from tollhouse.audit import query, store
from tollhouse.audit.record import ExchangeRecord
from tollhouse.audit.spool import REJECTED_NAME, SPOOL_NAME, Spool, count_lines
from tollhouse.audit.writer import AuditWriter
from tollhouse.cli import main
from tollhouse.dlp import DlpScanner, load_dlp_policy

AT = datetime(2025, 6, 2, 8, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    w = AuditWriter(d)
    w.start()
    w.submit("exchanges", exchange(id="e1", started_at=AT, stream=True, cost_usd=0.125))
    blocked = exchange(id="e2", started_at=AT, tokens_in=None, tokens_out=None, cost_usd=None,
                       model_answered=None, decision="block")  # fmt: skip
    w.submit("exchanges", blocked)
    detail = {"budget": "team:a/month", "used": 0.83, "n": [1, 2]}
    w.submit("events", {"exchange_id": "e1", "at": AT, "stage": "budget", "kind": "warn",
                        "detail": detail})  # fmt: skip
    w.close()
    return d


def _digest(data: Path) -> tuple[str, list[str]]:
    db = data / store.DB_NAME
    return hashlib.sha256(db.read_bytes()).hexdigest(), sorted(os.listdir(data))


def strict_json(line: str) -> object:
    """JSON as jq reads it: NaN and Infinity are not JSON."""

    def refuse(name: str) -> object:
        raise ValueError(f"not JSON: {name}")

    return json.loads(line, parse_constant=refuse)


# ---- the read-only query path --------------------------------------------------------------------

REFUSED = [
    "SELECT 1; SELECT 2",
    "SELECT 1; DELETE FROM exchanges",
    "SET threads = 1",
    "SET enable_external_access = true",
    "RESET enable_external_access",
    "SET memory_limit = '100GB'",
    "CHECKPOINT",
    "VACUUM",
    "CREATE TEMP TABLE t AS SELECT * FROM exchanges",
    "ATTACH ':memory:' AS m",
    "DETACH audit",
    "INSTALL httpfs",
    "LOAD httpfs",
    "PRAGMA enable_profiling",
    "CALL pragma_version()",
    "BEGIN TRANSACTION",
    "EXPORT DATABASE 'out'",
    "COPY exchanges TO 'out.csv'",
    "UPDATE EXTENSIONS",
    "PREPARE p AS SELECT 1",
    "DELETE FROM exchanges",
]


@pytest.mark.parametrize("sql", REFUSED)
def test_anything_but_one_query_is_refused_and_changes_nothing(data: Path, sql: str) -> None:
    before = _digest(data)
    with pytest.raises(query.QueryError) as refused:
        query.run_query(data, sql)
    message = str(refused.value)
    assert "read-only" in message or "one" in message, message
    assert "Traceback" not in message
    assert _digest(data) == before
    assert count(data / store.DB_NAME) == (2, 2)


@pytest.mark.parametrize("sql", ["", "   ", ";", "-- only a comment"])
def test_an_empty_query_is_refused_clearly(data: Path, sql: str) -> None:
    with pytest.raises(query.QueryError, match="no SQL"):
        query.run_query(data, sql)


def test_multiple_statements_are_named_in_the_message(data: Path) -> None:
    with pytest.raises(query.QueryError, match="one statement at a time"):
        query.run_query(data, "SELECT 1; SELECT 2")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*) FROM exchanges",
        "SELECT count(*) FROM exchanges;",
        "WITH x AS (SELECT * FROM exchanges) SELECT count(*) FROM x",
        "FROM exchanges SELECT count(*)",
        "DESCRIBE exchanges",
        "SHOW TABLES",
        "SUMMARIZE exchanges",
        "PIVOT exchanges ON decision USING count(*)",
        "EXPLAIN SELECT * FROM exchanges",
        "SELECT * FROM pragma_table_info('exchanges')",
    ],
)
def test_queries_of_every_read_form_still_work(data: Path, sql: str) -> None:
    before = _digest(data)
    columns, rows = query.run_query(data, sql)
    assert columns and rows
    assert _digest(data) == before


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_text('/etc/passwd')",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_blob('/etc/passwd')",
        "SELECT * FROM glob('/etc/*')",
        "SELECT * FROM 'audit-spool.jsonl'",
        "SELECT * FROM duckdb_secrets()",
        "SELECT * FROM read_json_auto('/proc/self/environ')",
    ],
)
def test_a_query_cannot_read_other_files(data: Path, sql: str) -> None:
    with pytest.raises(query.QueryError, match="disabled"):
        query.run_query(data, sql)


def test_a_query_cannot_change_the_configuration(data: Path) -> None:
    """Settings changed through a table function, not a SET statement, are refused as well."""
    before = _digest(data)
    with pytest.raises(query.QueryError, match="locked"):
        query.run_query(data, "SELECT * FROM enable_logging()")
    assert _digest(data) == before


def test_the_cli_refuses_a_second_statement_without_running_the_first(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "--data", str(data), "SELECT 1; SET threads = 1"]) == 2
    err = capsys.readouterr().err
    assert "one statement at a time" in err and "Traceback" not in err


# ---- --json: every column type, valid JSON, bounded memory ---------------------------------------


def test_json_lines_round_trip_every_column_type(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = (
        "SELECT id, started_at, stream, cost_usd, tokens_in, latency_ms, status, model_answered "
        "FROM exchanges ORDER BY id"
    )
    assert main(["audit", "--data", str(data), "--json", sql]) == 0
    e1, e2 = (strict_json(line) for line in capsys.readouterr().out.splitlines())
    assert isinstance(e1, dict) and isinstance(e2, dict)
    assert e1["started_at"] == AT.isoformat() and datetime.fromisoformat(e1["started_at"]) == AT
    assert e1["stream"] is True and e2["stream"] is False
    assert e1["cost_usd"] == 0.125 and e1["tokens_in"] == 120 and e1["status"] == 200
    assert isinstance(e1["latency_ms"], float)
    assert e2["cost_usd"] is None and e2["tokens_in"] is None and e2["model_answered"] is None

    assert main(["audit", "--data", str(data), "--json", 'SELECT detail, "at" FROM events']) == 0
    (event,) = (strict_json(line) for line in capsys.readouterr().out.splitlines())
    assert isinstance(event, dict)
    assert event["detail"] == {"budget": "team:a/month", "used": 0.83, "n": [1, 2]}
    assert event["at"] == AT.isoformat()


def test_json_lines_stay_json_for_not_a_number(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sql = "SELECT 'nan'::DOUBLE AS a, 'inf'::DOUBLE AS b, '-inf'::DOUBLE AS c, 1.5 AS d"
    assert main(["audit", "--data", str(data), "--json", sql]) == 0
    row = strict_json(capsys.readouterr().out)
    assert row == {"a": None, "b": None, "c": None, "d": 1.5}


def test_summary_json_is_valid_json(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--data", str(data), "--json"]) == 0
    for line in capsys.readouterr().out.splitlines():
        strict_json(line)


def test_json_output_streams_instead_of_holding_every_row(data: Path) -> None:
    """100k rows of 1 KiB would be ~100 MB held at once; the output streams in small chunks."""
    out = _Sink()
    sql = "SELECT i, repeat('x', 1024) AS pad FROM range(100000) t(i)"
    tracemalloc.start()
    try:
        with query.stream_query(data, sql) as result:
            for row in result.rows():
                out.write(json.dumps(row[0]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.lines == 100_000
    assert peak < 20 * 1024 * 1024, peak


def test_json_honours_an_explicit_limit(data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql = "SELECT i FROM range(100) t(i)"
    assert main(["audit", "--data", str(data), "--json", "--limit", "7", sql]) == 0
    captured = capsys.readouterr()
    assert [strict_json(line) for line in captured.out.splitlines()] == [{"i": i} for i in range(7)]
    assert "more not shown" in captured.err
    assert main(["audit", "--data", str(data), "--json", sql]) == 0  # no --limit: every row
    assert len(capsys.readouterr().out.splitlines()) == 100


def test_json_to_a_closed_pipe_ends_quietly(
    data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class ClosedPipe(io.StringIO):
        def write(self, s: str) -> int:
            raise BrokenPipeError

    monkeypatch.setattr("sys.stdout", ClosedPipe())
    assert main(["audit", "--data", str(data), "--json", "SELECT * FROM range(10)"]) == 0
    assert "Traceback" not in capsys.readouterr().err


class _Sink:
    def __init__(self) -> None:
        self.lines = 0

    def write(self, _: str) -> None:
        self.lines += 1


# ---- summary ---------------------------------------------------------------------------------


def test_summary_totals_are_the_sums_of_the_rows(tmp_path: Path) -> None:
    w = AuditWriter(tmp_path)
    w.start()
    for i in range(60):
        w.submit("exchanges", exchange(
            provider=[None, "openai", "anthropic"][i % 3],
            model_answered=[None, "m1", "m2", "m3"][i % 4],
            model_sent=None if i % 5 == 0 else "sent",
            model_requested="asked",
            tokens_in=None if i % 7 == 0 else i * 11,
            tokens_out=None if i % 6 == 0 else i,
            cost_usd=None if i % 8 == 0 else i / 1000,
            decision=["allow", "block", "error", "pass"][i % 4],
        ))  # fmt: skip
    w.close()
    s = query.summary(tmp_path)
    assert s.total is not None
    _, (raw,) = query.run_query(
        tmp_path,
        "SELECT count(*), count(*) FILTER (decision = 'block'), count(*) FILTER "
        "(decision = 'error'), sum(tokens_in), sum(tokens_out), sum(cost_usd) FROM exchanges",
    )
    assert (s.total.exchanges, s.total.blocked, s.total.errors) == raw[:3]
    assert (s.total.tokens_in, s.total.tokens_out) == raw[3:5]
    assert s.total.cost_usd == pytest.approx(raw[5])
    assert sum(u.exchanges for u in s.rows) == s.total.exchanges
    assert sum(u.tokens_in for u in s.rows) == s.total.tokens_in
    assert sum(u.tokens_out for u in s.rows) == s.total.tokens_out
    assert sum(u.cost_usd for u in s.rows) == pytest.approx(s.total.cost_usd)


# ---- privacy: the files are the owner's even in a folder others can read ------------------------


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_audit_files_are_private_inside_an_existing_open_folder(tmp_path: Path) -> None:
    data = tmp_path / "shared"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    with _umask(0o022):
        w = AuditWriter(data, flush_interval=0.05, spool_retry=60)
        w.start()
        try:
            w.submit("exchanges", exchange(id="ok"))
            w.submit("exchanges", exchange(id="bad", tokens_in="many"))
            assert w.flush(5)
            with held_open(data / store.DB_NAME):
                w.submit("exchanges", exchange(id="spooled"))
                assert w.flush(5)
                assert count_lines(data / SPOOL_NAME) == 1
                for name in (store.DB_NAME, SPOOL_NAME, REJECTED_NAME):
                    assert _mode(data / name) == 0o600, name
        finally:
            w.close()


def test_an_existing_database_that_others_can_read_is_made_private(tmp_path: Path) -> None:
    with _umask(0o022):
        store.connect(tmp_path / store.DB_NAME).close()
        (tmp_path / store.DB_NAME).chmod(0o644)
        w = AuditWriter(tmp_path, flush_interval=0.05)
        w.start()
        w.submit("exchanges", exchange())
        w.close()
    assert _mode(tmp_path / store.DB_NAME) == 0o600


# ---- poison rows: text that is not valid UTF-8 ---------------------------------------------------

# mitmproxy decodes header values and paths with "surrogateescape", and a response body it cannot
# decode with get_text(strict=False) likewise: a byte 0xFF from a client or upstream is "\udcff".
POISON = "app-\udcff"


def test_text_that_is_not_utf8_is_kept_not_lost(tmp_path: Path, writer: AuditWriter) -> None:
    writer.submit("exchanges", exchange(id="g1"))
    writer.submit("exchanges", exchange(id="p", app=POISON, response_body="ok \udc80"))
    writer.submit("exchanges", exchange(id="g2"))
    assert writer.flush(5)
    got = count(tmp_path / store.DB_NAME, "SELECT list(id ORDER BY id) FROM exchanges")[0]
    assert got == ["g1", "g2", "p"]
    app, body = count(tmp_path / store.DB_NAME, "SELECT app, response_body FROM exchanges "
                                                "WHERE id = 'p'")  # fmt: skip
    assert app == "app-\ufffd" and body == "ok \ufffd"


def test_a_poison_row_while_the_database_is_locked_loses_nothing(
    tmp_path: Path, writer: AuditWriter
) -> None:
    db = tmp_path / store.DB_NAME
    writer.submit("exchanges", exchange(id="first"))
    assert writer.flush(5)
    with held_open(db):
        for i in range(5):
            writer.submit("exchanges", exchange(id=f"locked-{i}"))
        writer.submit("exchanges", exchange(id="poison", app=POISON))
        assert writer.flush(5)
        assert count_lines(tmp_path / SPOOL_NAME) == 6
    assert writer.flush(5)
    assert count(db) == (7, 7)
    assert count_lines(tmp_path / SPOOL_NAME) == 0


def test_a_rejected_row_with_bad_text_is_still_kept(tmp_path: Path, writer: AuditWriter) -> None:
    writer.submit("exchanges", exchange(id="bad", tokens_in="many", app=POISON))
    writer.submit("exchanges", exchange(id="good"))
    assert writer.flush(5)
    assert count(tmp_path / store.DB_NAME, "SELECT list(id) FROM exchanges") == (["good"],)
    kept = json.loads((tmp_path / REJECTED_NAME).read_text(encoding="utf-8"))
    assert kept["row"]["id"] == "bad" and kept["row"]["app"] == POISON


def test_a_spool_line_cut_inside_a_character_does_not_block_the_spool(tmp_path: Path) -> None:
    spool = tmp_path / SPOOL_NAME
    Spool(spool).append([("exchanges", exchange(id="before"))])
    with spool.open("ab") as f:
        f.write('{"table": "exchanges", "row": {"id": "cut", "app": "caf\u00e9'.encode()[:-1])
    w = AuditWriter(tmp_path, flush_interval=0.05)
    w.start()
    w.submit("exchanges", exchange(id="after"))
    assert w.flush(5)
    w.close()
    got = count(tmp_path / store.DB_NAME, "SELECT list(id ORDER BY id) FROM exchanges")[0]
    assert got == ["after", "before"]
    assert count_lines(spool) == 0
    assert b"cut" in (tmp_path / REJECTED_NAME).read_bytes()


def test_an_append_after_a_torn_line_starts_on_a_new_line(tmp_path: Path) -> None:
    """A crash mid-append leaves a line without its newline; the next append must not be glued to
    it (and lost with it)."""
    spool = tmp_path / SPOOL_NAME
    with spool.open("w") as f:
        f.write('{"table": "exchanges", "row": {"id": "torn')
    Spool(spool).append([("exchanges", exchange(id="next"))])
    w = AuditWriter(tmp_path, flush_interval=0.05)
    w.start()
    assert w.flush(5)
    w.close()
    assert count(tmp_path / store.DB_NAME, "SELECT list(id) FROM exchanges") == (["next"],)
    assert "torn" in (tmp_path / REJECTED_NAME).read_text()


# ---- logs never carry row values ----------------------------------------------------------------


def test_logs_never_quote_a_rejected_value(
    tmp_path: Path, writer: AuditWriter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "tollhouse.audit")
    secret = "sk-live-0123456789abcdef"  # a value that landed in the wrong column
    writer.submit("exchanges", exchange(id="bad", tokens_in=secret, started_at="not " + secret))
    writer.submit("exchanges", exchange(id="bad2", app=POISON, status="x" + secret))
    assert writer.flush(5)
    assert count_lines(tmp_path / REJECTED_NAME) == 2
    assert secret not in caplog.text
    assert secret not in (writer.stats.last_error or "")
    assert "refused" in caplog.text  # the operator still hears about it


# ---- the spool: drained in bounded chunks ------------------------------------------------------


def test_a_large_spool_is_ingested_in_bounded_chunks(tmp_path: Path) -> None:
    spool = Spool(tmp_path / SPOOL_NAME)
    spool.append(("exchanges", {"id": f"r{i}"}) for i in range(2500))
    sizes: list[int] = []
    assert spool.drain(lambda entries: sizes.append(len(entries)), chunk=1000) == 2500
    assert sizes == [1000, 1000, 500]
    assert spool.count() == 0


def test_a_spool_whose_ingest_fails_midway_is_kept_whole(tmp_path: Path) -> None:
    spool = Spool(tmp_path / SPOOL_NAME)
    spool.append(("exchanges", {"id": f"r{i}"}) for i in range(25))
    calls = 0

    def flaky(entries: list[tuple[str, dict[str, object]]]) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("disk")

    with pytest.raises(OSError):
        spool.drain(flaky, chunk=10)
    assert spool.count() == 25  # re-offered next time; ingestion skips ids already present


def test_a_growing_spool_is_reported(
    tmp_path: Path, writer: AuditWriter, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    caplog.set_level(logging.INFO, "tollhouse.audit")
    monkeypatch.setattr("tollhouse.audit.writer.SPOOL_WARN_BYTES", 4096)
    writer.submit("exchanges", exchange())
    assert writer.flush(5)
    with held_open(tmp_path / store.DB_NAME):
        for _ in range(20):
            writer.submit("exchanges", exchange(response_body="x" * 1000))
        assert writer.flush(5)
        assert writer.stats.spool_bytes > 4096
    assert "audit spool" in caplog.text and "KiB" in caplog.text


# ---- the gateway's log line per exchange -------------------------------------------------------


def test_the_exchange_log_line_cannot_be_forged_by_a_client(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model name comes from the client's body: a newline in it must not start a log line."""
    caplog.set_level(logging.INFO, "tollhouse.audit")
    # The name is scrubbed by the DLP stage's scanner (without one it would be a fingerprint).
    scanner = DlpScanner(load_dlp_policy(Path(__file__).parents[3] / "rules" / "dlp.yaml"))
    monkeypatch.setattr("addons.audit.dlp_scanner", lambda: scanner)
    monkeypatch.setattr("addons._flow.dlp_scanner", lambda: scanner)
    record = ExchangeRecord(
        provider="openai", model_requested="gpt-4o\nexchange 0 openai chat gpt-4o -> 200 allow"
    )
    flow = tflow.tflow(resp=True)
    flow.metadata[KEY] = SimpleNamespace(record=record, recorded=False, findings=[], events=[])
    audit = Audit()
    audit.writer = AuditWriter(tmp_path)
    audit.writer.start()
    try:
        audit.response(flow)
    finally:
        audit.writer.close()
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("exchange ")]
    assert "\n" not in line and "gpt-4o\\nexchange" in line
