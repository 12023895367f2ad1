"""``tollhouse shadow``: the shadow-AI picture from the audit log (read-only).

tollhouse shadow                     per person or device: AI services, requests, tokens, cost,
                                     unsanctioned keys (fingerprints), first and last seen; and
                                     the observed consumer-app connections (last 7 days)
tollhouse shadow --since 24h         ... since a time: 30m, 24h, 7d, 2w, 2025-06-01, or all
tollhouse shadow --json              one JSON document (for jq and scripts)
tollhouse shadow fingerprint         read a provider API key on stdin, print its fingerprint
                                     (for `applications[].keys` in identities.yaml)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from tollhouse.audit.query import AuditError, no_data_hint
from tollhouse.identity import keys
from tollhouse.identity.report import ShadowReport, parse_since, shadow_report
from tollhouse.policyfile import PolicyError

EXIT_ERROR = 2


def add_parser(subparsers: Any, name: str, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        name,
        parents=[common],
        help="shadow-AI report: who uses which AI services, outside sanctioned apps",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", nargs="?", choices=("report", "fingerprint"), default="report")
    parser.add_argument("--since", default="7d", help="30m, 24h, 7d, 2w, an ISO date, or all")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--wait", type=float, default=5.0, help="seconds to wait for the database (default: 5)"
    )


def main(args: argparse.Namespace) -> int:
    if args.action == "fingerprint":
        return _fingerprint(args)
    if hint := no_data_hint(args.data):
        print(f"tollhouse shadow: {hint}", file=sys.stderr)
    try:
        since = parse_since(args.since)
        report = shadow_report(args.data, since, wait=args.wait)
    except (ValueError, AuditError) as exc:
        print(f"tollhouse shadow: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        sys.stdout.write(json.dumps(_document(report), default=_json_value) + "\n")
    else:
        _print_tables(report)
    return 0


def _fingerprint(args: argparse.Namespace) -> int:
    # The key comes on stdin, never as an argument: arguments end up in shell history and `ps`.
    if sys.stdin.isatty():
        print("paste the API key, then press Enter:", file=sys.stderr)
    key = sys.stdin.readline().strip()
    if not key:
        print("tollhouse shadow: error: no key on stdin", file=sys.stderr)
        return EXIT_ERROR
    secret_file = args.data / keys.SECRET_NAME
    if not os.environ.get(keys.ENV) and not secret_file.exists():
        # Never make a secret here: from a wrong --data its fingerprints would silently never
        # match what the gateway records. The gateway creates the file when it starts.
        print(
            f"tollhouse shadow: error: no fingerprint secret at {secret_file}: the gateway "
            "creates it when it starts (is --data pointing at the gateway's data folder?), "
            f"or set ${keys.ENV}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    try:
        secret = keys.load_secret(args.data)
    except PolicyError as exc:
        print(f"tollhouse shadow: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(keys.fingerprint(secret, key))
    return 0


def _document(report: ShadowReport) -> dict[str, Any]:
    callers = [{**asdict(c), "sanctioned": c.sanctioned} for c in report.callers]
    return {
        "since": report.since,
        "callers": callers,
        "observed": [asdict(o) for o in report.observed],
    }


def _print_tables(report: ShadowReport) -> None:
    console = Console() if sys.stdout.isatty() else Console(width=200)
    since = _cell(report.since) if report.since else "the beginning"
    table = Table(title=f"AI use by person or device since {since}")
    for heading in ("who", "team", "services", "apps", "requests", "shadow", "tokens", "cost USD"):
        table.add_column(heading, justify="right" if heading in ("requests", "tokens") else "left")
    for heading in ("unsanctioned keys", "why shadow", "first seen", "last seen"):
        table.add_column(heading, overflow="fold")
    for c in report.callers:
        table.add_row(
            f"{c.who} ({c.kind})",
            ", ".join(c.teams),
            ", ".join(c.services),
            ", ".join(c.apps),
            f"{c.requests:,}",
            f"{c.shadow_requests:,}" + (" + observed" if c.observed_connections else ""),
            f"{c.tokens:,}",
            f"{c.cost_usd:,.4f}",
            ", ".join(c.unsanctioned_keys),
            ", ".join(c.shadow_reasons),
            _cell(c.first_seen),
            _cell(c.last_seen),
            style=None if c.sanctioned else "yellow",
        )
    console.print(table)
    if report.observed:
        observed = Table(title="Observed consumer AI apps (not decrypted)")
        for heading in ("who", "app", "sni", "connections", "bytes up", "bytes down", "time"):
            observed.add_column(heading)
        for o in report.observed:
            observed.add_row(
                o.who,
                o.app or "",
                o.sni or "",
                f"{o.connections:,}",
                f"{o.bytes_up:,}",
                f"{o.bytes_down:,}",
                f"{o.duration_ms / 1000:,.1f} s",
            )
        console.print(observed)
    if not report.callers:
        console.print("no AI traffic recorded in this period", style="dim")


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat(timespec="seconds") if isinstance(value, datetime) else str(value)
