"""``tollhouse ca``: the interception CA clients trust (init, show, export, rotate).

A CA made here can vouch only for the catalog's AI hosts and the names given with ``--permit``
(critical X.509 Name Constraints; never an IP address). See :mod:`tollhouse.nameconstraints` for
how catalog patterns become permitted names and :mod:`tollhouse.castore` for rotation.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

from tollhouse import castore, nameconstraints, pki
from tollhouse.catalog import load_catalog
from tollhouse.policyfile import PolicyError


def add_parser(
    subparsers: argparse._SubParsersAction, name: str, common: argparse.ArgumentParser
) -> None:
    # --rules/--certs go on each action only: argparse lets a sub-parser's defaults overwrite
    # values the parent parsed.
    p = subparsers.add_parser(name, help="the interception CA clients trust")
    actions = p.add_subparsers(dest="ca_action", required=True)

    def source_options(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--permit",
            action="append",
            default=[],
            metavar="NAME",
            help="also permit NAME and the names below it (repeatable)",
        )
        q.add_argument(
            "--passphrase-env",
            metavar="VAR",
            help="encrypt the CA key with the passphrase in environment variable VAR",
        )
        q.add_argument(
            "--import",
            dest="import_cert",
            type=Path,
            metavar="CERT",
            help="bring your own CA or intermediate (PEM) instead of creating one",
        )
        q.add_argument("--key", type=Path, help="its private key (PEM), with --import")
        q.add_argument("--chain", type=Path, help="its issuers (PEM), sent to clients")

    init = actions.add_parser(
        "init", parents=[common], help="create the CA (or import one) in --certs"
    )
    source_options(init)
    show = actions.add_parser("show", parents=[common], help="describe the CA in --certs")
    show.add_argument("--json", action="store_true")
    exp = actions.add_parser("export", parents=[common], help="write the CA certificate")
    exp.add_argument("--format", choices=("pem", "der", "p12"), default="pem")
    exp.add_argument("--out", type=Path, help="file to write (default: stdout for pem)")
    exp.add_argument("--passphrase-env", metavar="VAR", help="protect the p12 with this passphrase")
    rot = actions.add_parser(
        "rotate", parents=[common], help="prepare the next CA (then --promote it)"
    )
    source_options(rot)
    rot.add_argument(
        "--promote", action="store_true", help="make the prepared CA the one the gateway signs with"
    )


def passphrase_from_env(var: str | None) -> bytes | None:
    """The passphrase in environment variable ``var``; ValueError if it is unset or empty.
    Taken from the environment, never the command line, which other users can read."""
    if not var:
        return None
    value = os.environ.get(var, "")
    if not value:
        raise ValueError(f"--passphrase-env {var}: the variable is not set or empty")
    return value.encode()


def permitted_names(rules: Path, extra: list[str]) -> tuple[list[str], list[str]]:
    """The names a new CA permits: the catalog's, plus ``extra``; and the catalog patterns that
    could not be covered narrowly."""
    names, uncovered = nameconstraints.catalog_names(load_catalog(rules / "hosts.yaml"))
    return names + [nameconstraints.check_permit(n) for n in extra], uncovered


def main(args: argparse.Namespace) -> int:
    try:
        return _ACTIONS[args.ca_action](args)
    except (pki.CAError, PolicyError, ValueError, OSError) as exc:
        print(f"tollhouse ca {args.ca_action}: {exc}", file=sys.stderr)
        return 2


def _create(args: argparse.Namespace, rotating: bool) -> int:
    passphrase = passphrase_from_env(args.passphrase_env)
    if args.import_cert:
        if not args.key:
            raise ValueError("--import needs --key (the CA's private key)")
        imported = (args.import_cert, args.key, args.chain)
        if rotating:
            cert = castore.rotate(args.certs, [], passphrase, imported)
        else:
            cert = castore.import_ca(args.certs, *imported, passphrase=passphrase)
    else:
        names, uncovered = permitted_names(args.rules, args.permit)
        for pattern in uncovered:
            print(
                f"warning: {pattern} cannot be permitted without permitting far more; clients "
                f"will refuse it until you add its hosts with --permit",
                file=sys.stderr,
            )
        if rotating:
            cert = castore.rotate(args.certs, names, passphrase)
        else:
            cert = castore.init_ca(args.certs, names, passphrase)
    if nameconstraints.of(cert) is None:
        print(
            "warning: this CA has no name constraints; `tollhouse run` needs "
            "--allow-unconstrained-ca to use it",
            file=sys.stderr,
        )
    if rotating:
        nxt = args.certs / castore.NEXT_DIR / pki.CA_CERT_FILE
        print(f"next CA {nxt} ({pki.fingerprint(cert)}); the gateway still signs with the current")
        print(f"clients must now trust both: install {args.certs / castore.BUNDLE_FILE}")
        print("when every client has it: tollhouse ca rotate --promote, then restart the gateway")
    else:
        print(f"CA {args.certs / pki.CA_CERT_FILE} ({pki.fingerprint(cert)})")
        chain = castore.describe(args.certs).chain
        if chain:
            root = chain[-1].subject.rfc4514_string()
            print(f"clients must trust the chain's root ({root}); the gateway sends the rest")
        else:
            print(f"clients must trust {args.certs / pki.CA_CERT_FILE}")
    return 0


def _init(args: argparse.Namespace) -> int:
    return _create(args, rotating=False)


def _rotate(args: argparse.Namespace) -> int:
    if not args.promote:
        return _create(args, rotating=True)
    cert = castore.promote(args.certs)
    print(f"{args.certs / pki.CA_CERT_FILE} is now the new CA ({pki.fingerprint(cert)})")
    print(f"the old one (and its key, for a rollback) is in {args.certs / castore.PREVIOUS_DIR}")
    print("restart the gateway to sign with the new CA; clients that trust")
    print(f"{args.certs / castore.BUNDLE_FILE} keep working; remove the old CA from them later")
    return 0


def _show(args: argparse.Namespace) -> int:
    info = castore.describe(args.certs)
    days = (info.expires - datetime.datetime.now(datetime.UTC)).days
    nxt = args.certs / castore.NEXT_DIR / pki.CA_CERT_FILE
    fields = {
        "certificate": str(info.path),
        "subject": info.cert.subject.rfc4514_string(),
        "sha256": pki.fingerprint(info.cert),
        "expires": f"{info.expires:%Y-%m-%d} ({days} days)",
        "key": f"mode {info.key_mode:04o}, {'encrypted' if info.key_encrypted else 'unencrypted'}"
        if info.key_mode is not None
        else "missing",
        "constraints": "none: this CA can vouch for any name"
        if info.permitted is None
        else f"{len(info.permitted)} DNS subtrees permitted"
        + (", IP addresses excluded" if info.ips_excluded else ""),
        "chain": [c.subject.rfc4514_string() for c in info.chain],
        "next": str(nxt) if nxt.exists() else None,
        "permitted": info.permitted,
    }
    if args.json:
        print(json.dumps(fields))
        return 0
    for key, value in fields.items():
        if key == "permitted" and value:
            print(f"{key:12} {', '.join(value)}")
        elif key == "chain" and value:
            print(f"{key:12} {' <- '.join(value)} (sent to clients)")
        elif key == "next" and value:
            print(f"{key:12} {value} (clients trust {args.certs / castore.BUNDLE_FILE})")
        elif value and not isinstance(value, list):
            print(f"{key:12} {value}")
    return 0


def _export(args: argparse.Namespace) -> int:
    data = castore.export(args.certs, args.format, passphrase_from_env(args.passphrase_env))
    if args.out:
        args.out.write_bytes(data)
        print(f"wrote {args.out} ({args.format})", file=sys.stderr)
    elif args.format == "pem":
        sys.stdout.write(data.decode())
    else:
        raise ValueError(f"--format {args.format} is binary: give --out FILE")
    return 0


_ACTIONS = {"init": _init, "show": _show, "export": _export, "rotate": _rotate}
