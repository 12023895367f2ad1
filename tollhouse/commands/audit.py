"""``tollhouse audit``: query the audit log, read-only, while the gateway keeps writing it.

tollhouse audit                      usage by provider and model, totals, time range
tollhouse audit "SELECT ..."         read-only SQL: exchanges, events, findings, connections
tollhouse audit --json "SELECT ..."  one JSON object per row (for jq and scripts)
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from tollhouse.audit.query import (
    AuditError,
    Summary,
    UsageRow,
    no_data_hint,
    run_query,
    stream_query,
    summary,
)

EXIT_ERROR = 2
TABLE_ROWS = 1000  # a table longer than this is unreadable anyway


def add_parser(subparsers: Any, name: str, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        name,
        parents=[common],
        help="query the audit log (read-only)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sql", nargs="?", help="a read-only SQL query; omit it for a summary")
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of tables")
    parser.add_argument(
        "--wait",
        type=float,
        default=5.0,
        help="seconds to wait while the gateway holds the database (default: 5)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="stop a query running longer than this many seconds; 0 for no limit (default: 60)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="rows to print at most (default: 1000 in a table; every row with --json, streamed)",
    )


def main(args: argparse.Namespace) -> int:
    if hint := no_data_hint(args.data):
        print(f"tollhouse audit: {hint}", file=sys.stderr)
    try:
        if args.sql:
            return _query(args)
        return _summary(args)
    except AuditError as exc:
        print(f"tollhouse audit: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _query(args: argparse.Namespace) -> int:
    if args.json:
        return _query_json(args)
    wanted = TABLE_ROWS if args.limit is None else max(args.limit, 0)
    columns, rows = run_query(
        args.data, args.sql, wait=args.wait, max_rows=wanted + 1, timeout=args.timeout or None
    )
    shown = rows[:wanted]
    table = Table()
    for name in columns:
        table.add_column(name, overflow="fold")  # fold, never cut: an audit hides nothing
    for row in shown:
        table.add_row(*(_cell(v) for v in row))
    console = _console()
    console.print(table)
    more = " (more not shown: add LIMIT, or use --json)" if len(rows) > len(shown) else ""
    console.print(f"{len(shown)} row{'s' if len(shown) != 1 else ''}{more}", style="dim")
    return 0


def _query_json(args: argparse.Namespace) -> int:
    """JSON lines, streamed: memory stays flat however many rows the query returns. The database
    stays open while they print, so a slow reader of the output delays the gateway's writes (it
    spools meanwhile, nothing is lost)."""
    limit = None if args.limit is None else max(args.limit, 0)
    out = sys.stdout
    printed = 0
    try:
        with stream_query(
            args.data, args.sql, wait=args.wait, timeout=args.timeout or None
        ) as result:
            for row in result.rows():
                if limit is not None and printed >= limit:
                    print(
                        f"tollhouse audit: {printed} row(s) printed, more not shown (--limit)",
                        file=sys.stderr,
                    )
                    break
                out.write(_dumps(dict(zip(result.columns, row, strict=True))) + "\n")
                printed += 1
        out.flush()
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        _silence_stdout()
    return 0


def _silence_stdout() -> None:
    """After a broken pipe, keep Python from complaining again when it flushes stdout at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


def _summary(args: argparse.Namespace) -> int:
    s = summary(args.data, wait=args.wait)
    if args.json:
        _print_summary_json(sys.stdout, s)
        return 0
    console = _console()
    table = Table(title=f"Audit log {s.database}")
    table.add_column("provider")
    table.add_column("model")
    for heading in ("exchanges", "blocked", "errors", "tokens in", "tokens out", "cost USD"):
        table.add_column(heading, justify="right")
    for usage in s.rows:
        table.add_row(*_usage_cells(usage))
    if s.total is not None:
        table.add_section()
        table.add_row(*_usage_cells(s.total, label="total"), style="bold")
    console.print(table)
    if s.first_at is not None:
        console.print(f"from {_cell(s.first_at)} to {_cell(s.last_at)}")
    if s.spool_pending:
        console.print(
            f"{s.spool_pending} row(s) waiting in the spool, not yet in the database "
            "(the gateway ingests them when it can next open it)",
            style="yellow",
        )
    if s.rejected:
        console.print(
            f"{s.rejected} row(s) refused by the database, kept in audit-rejected.jsonl",
            style="red",
        )
    return 0


def _usage_cells(u: UsageRow, label: str | None = None) -> list[str]:
    return [
        label or (u.provider or "-"),
        "" if label else (u.model or "-"),
        f"{u.exchanges:,}",
        f"{u.blocked:,}",
        f"{u.errors:,}",
        f"{u.tokens_in:,}",
        f"{u.tokens_out:,}",
        _usd(u.cost_usd),
    ]


def _usd(amount: float) -> str:
    """Dollars with cents, and enough digits for the fractions of a cent one request costs."""
    if amount == 0 or abs(amount) >= 0.01:
        return f"{amount:,.4f}"
    return f"{amount:.2g}"


def _print_summary_json(out: TextIO, s: Summary) -> None:
    """One object per (provider, model), then one ``{"total": ...}`` object with the rest."""
    for u in s.rows:
        out.write(_dumps(vars(u)) + "\n")
    total = vars(s.total) if s.total else None
    meta = {
        "total": total,
        "first_at": s.first_at,
        "last_at": s.last_at,
        "spool_pending": s.spool_pending,
        "rejected": s.rejected,
        "database": str(s.database),
    }
    out.write(_dumps(meta) + "\n")


def _dumps(obj: Any) -> str:
    """One JSON value, valid for jq: NaN and infinities (not JSON) become null."""
    try:
        return json.dumps(obj, default=_json_value, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(obj), default=_json_value, ensure_ascii=False, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):  # numbers, not strings: jq can add them up
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)  # UUID and anything else DuckDB hands back


def _console() -> Console:
    # Piped or captured output gets a wide table rather than rich's 80-column default.
    return Console() if sys.stdout.isatty() else Console(width=200)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict | list):  # a JSON column, a LIST or a STRUCT: show it as JSON
        return _dumps(value)
    return str(value)
