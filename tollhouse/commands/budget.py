"""``tollhouse budget``: where every budget stands in its current period.

tollhouse budget                          a table with progress bars
tollhouse budget --json                   one JSON object per budget (for jq and scripts)
tollhouse budget --state redis://host/0   budgets shared by several gateways

It only reads the state store, so it is safe next to a running gateway.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from rich.console import Console
from rich.progress_bar import ProgressBar
from rich.table import Table

from tollhouse.budget.policy import Unit, load_budget_policy
from tollhouse.budget.status import BudgetStatus, budget_status
from tollhouse.budget.store import StateError, open_store
from tollhouse.policyfile import PolicyError

EXIT_ERROR = 2


def add_parser(subparsers: Any, name: str, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        name,
        parents=[common],
        help="show each budget's spend, reservations and reset time",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--state",
        default="",
        help="where spend lives: embedded (default, under --data) or redis://host:port/db",
    )
    parser.add_argument("--json", action="store_true", help="print JSON lines instead of a table")


def _amount(unit: str, value: float) -> str:
    return f"${value:,.2f}" if unit == Unit.USD else f"{value:,.0f} tok"


def _reset(text: str) -> str:
    """``2026-06-01T00:00:00+02:00`` → ``2026-06-01 00:00 +02:00``."""
    when = datetime.fromisoformat(text)
    return when.strftime("%Y-%m-%d %H:%M ") + (
        when.strftime("%z")[:3] + ":" + when.strftime("%z")[3:]
    )


def render(rows: list[BudgetStatus], out: TextIO) -> None:
    """The table: one row per budget, with a bar coloured by how close it is to the cap."""
    # A pipe has no width; do not squeeze the table into 80 columns.
    console = Console(file=out, highlight=False, width=None if out.isatty() else 160)
    if not rows:
        console.print("No budgets: add them to rules/budgets.yaml.")
        return
    table = Table(show_edge=False)
    numbers = ("spent", "reserved", "limit", "remaining")
    columns = ("budget", "period", *numbers[:3], "used", "", numbers[3], "resets")
    for column in columns:
        table.add_column(column, justify="right" if column in numbers else "left", no_wrap=True)
    for row in rows:
        style = (
            "red"
            if row.used_percent >= 100
            else "yellow"
            if row.used_percent >= row.warn_at_percent
            else "green"
        )
        bar = ProgressBar(total=100, completed=min(row.used_percent, 100), width=20)
        bar.complete_style = bar.finished_style = style
        table.add_row(
            row.budget,
            row.period,
            _amount(row.unit, row.spent),
            _amount(row.unit, row.reserved),
            _amount(row.unit, row.limit),
            bar,
            f"[{style}]{row.used_percent:.1f}%[/]",
            _amount(row.unit, row.remaining),
            _reset(row.resets_at),
        )
    console.print(table)


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    now = datetime.now(UTC)
    try:
        policy = load_budget_policy(args.rules / "budgets.yaml")
        store = open_store(args.state, args.data, read_only=True)
        try:
            rows = budget_status(policy, store.states(now.timestamp()), now)
        finally:
            store.close()
    except (PolicyError, StateError) as exc:
        print(f"tollhouse budget: {exc}", file=sys.stderr)
        return EXIT_ERROR
    state_file = args.data / "budget.sqlite3"
    if rows and args.state in ("", "embedded") and not state_file.exists():
        print(
            f"tollhouse budget: no spend recorded yet: no {state_file} (is --data pointing at "
            "the gateway's data folder?)",
            file=sys.stderr,
        )
    if args.json:
        for row in rows:
            out.write(json.dumps(row.as_dict()) + "\n")
    else:
        render(rows, out)
    return 0
