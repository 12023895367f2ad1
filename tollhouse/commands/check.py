"""``tollhouse check``: validate every policy file in the rules folder, as a gateway would; with
``--deployment``, also the CA, the data folder, the port and the state store around them."""

from __future__ import annotations

import argparse
import json

from tollhouse.rulecheck import check_deployment, check_rules


def add_parser(
    subparsers: argparse._SubParsersAction, name: str, common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(
        name, parents=[common], help="validate the policy files in --rules (exit 1 on an error)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.add_argument(
        "--deployment",
        action="store_true",
        help="also check the CA (--certs), data folder, port and --state",
    )
    p.add_argument("--host", default="127.0.0.1", help="address the gateway will listen on")
    p.add_argument("--port", type=int, default=8080, help="port the gateway will listen on")
    p.add_argument("--state", default="embedded", help="embedded or redis://host:port/db")
    p.add_argument("--passphrase-env", metavar="VAR", help="variable holding the CA passphrase")


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
    failed = any(r.error for r in results)
    if args.deployment:
        from tollhouse.commands.ca import passphrase_from_env

        try:
            passphrase = passphrase_from_env(args.passphrase_env)
        except ValueError as exc:
            print(f"error  {exc}")
            return 1
        findings = check_deployment(
            args.rules, args.data, args.certs, args.host, args.port, args.state, passphrase
        )
        for f in findings:
            if args.json:
                print(json.dumps({"check": f.what, "state": f.level, "detail": f.detail}))
            else:
                print(f"{f.level:6} {f.what}: {f.detail}")
        failed = failed or any(f.level == "error" for f in findings)
    return 1 if failed else 0
