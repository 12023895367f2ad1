"""The ``tollhouse`` command. Every subcommand takes the same ``--rules``, ``--data`` and
``--certs`` options with the same defaults, so an operator points them all at one deployment."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tollhouse.commands import audit, budget, ca, check, pac, run, scan, shadow

COMMANDS = {
    "run": run,
    "check": check,
    "audit": audit,
    "scan": scan,
    "budget": budget,
    "shadow": shadow,
    "ca": ca,
    "pac": pac,
}


def _deployment_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--rules", type=Path, default=Path("rules"), help="policy folder (default: rules/)"
    )
    common.add_argument(
        "--data", type=Path, default=Path("data"), help="audit log and state (default: data/)"
    )
    common.add_argument(
        "--certs", type=Path, default=Path("certs"), help="interception CA (default: certs/)"
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tollhouse", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    common = _deployment_options()
    for name, module in COMMANDS.items():
        module.add_parser(subparsers, name, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(COMMANDS[args.command].main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
