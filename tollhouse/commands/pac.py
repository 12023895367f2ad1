"""``tollhouse pac``: write the proxy auto-config file for laptops and browsers.

tollhouse pac --proxy gw1.corp:8080                       one gateway
tollhouse pac --proxy gw1.corp:8080 --proxy gw2.corp:8080 a second gateway as the fallback
tollhouse pac --proxy gw1.corp:8080 -o /srv/www/proxy.pac write to a file instead of stdout

AI hosts from the catalog (rules/hosts.yaml: every API host, and consumer apps in `inspect` or
`block`) go to the gateways in the order given and never DIRECT, so an outage of every gateway
makes them fail rather than bypass the gateway. Consumer apps in `observe` go to the gateways
to be counted, then DIRECT. Everything else goes DIRECT. A running gateway serves the same file
at http://<gateway>/proxy.pac and /wpad.dat.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from tollhouse.catalog import PolicyError, load_catalog
from tollhouse.pac import pac_file

EXIT_ERROR = 2


def add_parser(subparsers: Any, name: str, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        name,
        parents=[common],
        help="write a proxy auto-config (PAC) file sending AI hosts to the gateway",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--proxy",
        action="append",
        required=True,
        metavar="HOST:PORT",
        help="a gateway address as clients reach it; repeat for fallbacks, first preferred",
    )
    parser.add_argument(
        "-o", "--output", type=Path, help="write the file here (atomically) instead of stdout"
    )


def main(args: argparse.Namespace) -> int:
    hosts = args.rules / "hosts.yaml"
    try:
        text = pac_file(load_catalog(hosts), args.proxy, source=str(hosts))
    except (PolicyError, ValueError) as exc:
        print(f"tollhouse pac: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        _write_atomically(args.output, text)
    except OSError as exc:
        print(f"tollhouse pac: {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step, so a web server never serves half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, 0o644)  # a PAC file is public: every client downloads it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
