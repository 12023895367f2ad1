"""Helpers for the audit tests: records, and other processes that hold the database file.

DuckDB's file lock is per process, so "someone else has the file open" must be a real subprocess.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pytest

from tollhouse.audit.record import Decision, ExchangeRecord
from tollhouse.audit.writer import AuditWriter

REPO = Path(__file__).resolve().parents[3]


def exchange(**fields: object) -> dict[str, object]:
    """A finished exchange row with plausible values; ``fields`` override them."""
    record = ExchangeRecord(
        client_addr="10.0.0.7",
        host="api.openai.com",
        method="POST",
        path="/v1/chat/completions",
        provider="openai",
        operation="chat",
        model_requested="gpt-4o",
        model_sent="gpt-4o",
        model_answered="gpt-4o-2024-08-06",
        status=200,
        tokens_in=120,
        tokens_out=30,
        cost_usd=0.0006,
        decision=Decision.ALLOW,
    )
    record.finish()
    row = record.as_row()
    row.update(fields)
    return row


def count(db: Path, sql: str = "SELECT count(*), count(DISTINCT id) FROM exchanges") -> tuple:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute(sql).fetchone()
        assert row is not None
        return tuple(row)
    finally:
        con.close()


@contextmanager
def held_open(db: Path, *, read_only: bool = True) -> Iterator[subprocess.Popen[str]]:
    """Keep ``db`` open in another process until the block ends."""
    code = textwrap.dedent(
        f"""
        import sys, duckdb
        con = duckdb.connect({str(db)!r}, read_only={read_only})
        print("open", flush=True)
        sys.stdin.readline()
        con.close()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
        yield proc
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=10)


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[AuditWriter]:
    w = AuditWriter(tmp_path, batch_size=50, flush_interval=0.05, spool_retry=0.1)
    w.start()
    yield w
    w.close()
