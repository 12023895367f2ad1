"""``tollhouse check``: validate every policy file in the rules folder, as a gateway would."""

from __future__ import annotations

import argparse
import json

from tollhouse.rulecheck import check_rules


def add_parser(
    subparsers: argparse._SubParsersAction, name: str, common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        name, parents=[common], help="validate the policy files in --rules (exit 1 on an error)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per file")


def main(args: argparse.Namespace) -> int:
    results = check_rules(args.rules)
    for result in results:
        if args.json:
            state = "absent" if result.absent else ("error" if result.error else "ok")
            line = {"file": str(result.file), "what": result.what, "state": state}
            print(json.dumps(line | ({"error": result.error} if result.error else {})))
        elif result.error:
            print(f"error  {result.error}")  # stdout, in order with the others; exit code 1
        elif result.absent:
            print(f"absent {result.file} ({result.what}: none)")
        else:
            print(f"ok     {result.file} ({result.what})")
    return 1 if any(r.error for r in results) else 0
