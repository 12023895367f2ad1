"""``tollhouse scan``: the DLP and injection engines offline, for rule authors and batch checks.

echo "mail bob@corp.io" | tollhouse scan          findings of stdin as one JSON object
tollhouse scan --jsonl < prompts.jsonl             one line out per {"id": ..., "text": ...} in
tollhouse scan --role tool < page.txt              injection scored as a tool result would be

Offsets are character offsets into the original text. Values are never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from tollhouse.dlp import DlpScanner, Finding, PolicyError, load_dlp_policy
from tollhouse.exchange import Role

EXIT_ERROR = 2
# --role names → the role the adapters give such text (documents are scored as tool results).
ROLE_NAMES = {
    "user": Role.USER,
    "tool": Role.TOOL_RESULT,
    "tool_result": Role.TOOL_RESULT,
    "document": Role.TOOL_RESULT,
    "assistant": Role.ASSISTANT,
    "field": Role.FIELD,
    "input": Role.INPUT,
}


def add_parser(subparsers: Any, name: str, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        name,
        parents=[common],
        help="scan text for PII and secrets with the DLP rules",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--jsonl", action="store_true", help='read {"id", "text"} lines, write one per line'
    )
    parser.add_argument(
        "--policy",
        default=None,
        help="a policy name, as an identity binding gives it: dlp.yaml and injection.yaml each "
        "apply their section of that name, or their default_policy",
    )
    parser.add_argument(
        "--role",
        choices=sorted(ROLE_NAMES),
        default="user",
        help="score the text for injection as this role would be: user (default), or tool / "
        "document (a tool result or retrieved document: indirect-injection rules, its trust)",
    )


def main(args: argparse.Namespace) -> int:
    try:
        scanner = DlpScanner(load_dlp_policy(args.rules / "dlp.yaml"))
        injection, injection_names = _injection_checker(args)
    except PolicyError as e:
        print(f"tollhouse scan: {e}", file=sys.stderr)
        return EXIT_ERROR
    # As in the gateway, a policy name is a profile across engines: each applies its section of
    # that name, or its default where it has none. A name neither defines is a mistake.
    dlp_names = set(scanner.policy.policies)
    if args.policy is not None and args.policy not in dlp_names | injection_names:
        known = ", ".join(sorted(dlp_names | injection_names))
        print(
            f"tollhouse scan: no policy named {args.policy!r} in dlp.yaml or injection.yaml "
            f"(known: {known})",
            file=sys.stderr,
        )
        return EXIT_ERROR
    policy = args.policy if args.policy in dlp_names else None
    if not args.jsonl:
        text = sys.stdin.read()
        out: dict[str, Any] = {"findings": _findings(scanner, text, policy)}
        if injection is not None:
            out["injection"] = injection(text)
        json.dump(out, sys.stdout)
        sys.stdout.write("\n")
        return 0
    return _scan_lines(scanner, sys.stdin, sys.stdout, policy, injection)


def _findings(scanner: DlpScanner, text: str, policy: str | None) -> list[dict[str, Any]]:
    return [_as_json(f) for f in scanner.scan_text(text, policy)]


def _as_json(f: Finding) -> dict[str, Any]:
    return {
        "type": f.entity_type,
        "start": f.start,
        "end": f.end,
        "action": f.action,
        "score": round(f.score, 2),
        "detector": f.detector,
    }


def _scan_lines(
    scanner: DlpScanner, lines: TextIO, out: TextIO, policy: str | None, injection: Any
) -> int:
    """One output line per good input line; bad lines reported on stderr, exit 1 at the end."""
    failed = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            print(
                f"tollhouse scan: line {number}: not valid JSON: {e.msg} (column {e.colno})",
                file=sys.stderr,
            )
            failed += 1
            continue
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            print(
                f'tollhouse scan: line {number}: expected an object with a string "text"',
                file=sys.stderr,
            )
            failed += 1
            continue
        record: dict[str, Any] = {
            "id": item.get("id"),
            "findings": _findings(scanner, item["text"], policy),
        }
        if injection is not None:
            record["injection"] = injection(item["text"])
        out.write(json.dumps(record) + "\n")
    return 1 if failed else 0


def _injection_checker(args: argparse.Namespace) -> tuple[Any, set[str]]:
    """The injection verdict as JSON under ``--policy`` (its section, else the default), and the
    injection policy names; (None, no names) without the engine or rules/injection.yaml.
    Raises :class:`PolicyError` for a bad file."""
    try:
        from tollhouse.injection import InjectionScanner, load_injection_policy
    except ImportError:
        return None, set()
    path = args.rules / "injection.yaml"
    if not path.exists():
        return None, set()
    checker = InjectionScanner(load_injection_policy(path))
    names = set(checker.pack.policies)
    policy = args.policy if args.policy in names else None
    role = ROLE_NAMES[getattr(args, "role", "user")]
    return (lambda text: checker.check_text(text, policy, role).as_json()), names
