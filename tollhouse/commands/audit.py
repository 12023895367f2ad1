"""``tollhouse audit``: query the audit log, read-only, while the gateway keeps writing it.

tollhouse audit                      usage by provider and model, totals, time range
tollhouse audit "SELECT ..."         read-only SQL: exchanges, events, findings, connections
tollhouse audit --json "SELECT ..."  one JSON object per row (for jq and scripts)
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from tollhouse.audit.query import AuditError, Summary, UsageRow, run_query, summary

EXIT_ERROR = 2


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
        "--limit",
        type=int,
        default=1000,
        help="rows to show in a table (default: 1000; --json prints all)",
    )


def main(args: argparse.Namespace) -> int:
    try:
        if args.sql:
            return _query(args)
        return _summary(args)
    except AuditError as exc:
        print(f"tollhouse audit: error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _query(args: argparse.Namespace) -> int:
    limit = None if args.json else max(args.limit, 0) + 1  # one more, to know we cut it short
    columns, rows = run_query(args.data, args.sql, wait=args.wait, max_rows=limit)
    if args.json:
        _print_json_lines(sys.stdout, columns, rows)
        return 0
    shown = rows[: args.limit]
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


def _print_json_lines(out: TextIO, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    for row in rows:
        out.write(_dumps(dict(zip(columns, row, strict=True))) + "\n")


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_value, ensure_ascii=False)


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
    return str(value)
