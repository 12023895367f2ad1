"""``tollhouse run``: start the gateway (mitmproxy with the Tollhouse addon chain)."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from tollhouse.audit.writer import private_data_dir
from tollhouse.commands.ca import passphrase_from_env, permitted_names
from tollhouse.pki import CAError, ensure_interception_ca
from tollhouse.rulecheck import ca_problem, first_error, weakening_option
from tollhouse.upstreams import parse_upstreams

MODES = ("regular", "transparent", "reverse:URL", "upstream:URL", "wireguard")


def add_parser(
    subparsers: argparse._SubParsersAction, name: str, common: argparse.ArgumentParser
) -> None:
    p = subparsers.add_parser(name, parents=[common], help="start the gateway")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    p.add_argument(
        "--mode", default="regular", help=f"mitmproxy mode: {', '.join(MODES)} (default regular)"
    )
    p.add_argument(
        "--upstream",
        action="append",
        default=[],
        metavar="HOST=ADDR:PORT",
        help="send a catalog host's traffic to another address; '*' for every AI host (repeatable)",
    )
    p.add_argument("--upstream-ca", type=Path, help="CA certificate (PEM) to trust for upstreams")
    p.add_argument("--web", action="store_true", help="run inside mitmproxy's web UI (mitmweb)")
    p.add_argument(
        "--state",
        default="embedded",
        help="where budget spend lives: embedded (under --data) or redis://host:port/db",
    )
    p.add_argument(
        "--allow-unconstrained-ca",
        action="store_true",
        help="sign with a CA that has no name constraints (it could vouch for any site)",
    )
    p.add_argument("--passphrase-env", metavar="VAR", help="variable holding the CA passphrase")


def addon_chain() -> Path:
    """The file mitmproxy loads: the ordered addon chain."""
    import addons  # the installed package next to tollhouse/

    return Path(addons.__file__).resolve()


def mitmproxy_args(args: argparse.Namespace, passphrase: bytes | None = None) -> list[str]:
    """The mitmproxy command line for these options."""
    out = [
        "-s",
        str(addon_chain()),
        "--listen-host",
        args.host,
        "--listen-port",
        str(args.port),
        "--mode",
        args.mode,
        "--set",
        f"confdir={args.certs.resolve()}",
        "--set",
        f"tollhouse_rules={args.rules.resolve()}",
        "--set",
        f"tollhouse_data={args.data.resolve()}",
        # mitmproxy's own per-flow lines would print URLs (Gemini puts API keys in the query
        # string); the audit stage logs its own line per exchange instead.
        "--set",
        "flow_detail=0",
    ]
    for spec in args.upstream:
        out += ["--set", f"tollhouse_upstream={spec}"]
    if args.upstream_ca:
        out += ["--set", f"tollhouse_upstream_ca={args.upstream_ca.resolve()}"]
    if args.state not in ("", "embedded"):
        out += ["--set", f"tollhouse_state={args.state}"]
    if passphrase:
        # In-process arguments, not a command line other users could read.
        out += ["--set", f"cert_passphrase={passphrase.decode()}"]
    return out


def check_mode(spec: str, host: str, port: int) -> str | None:
    """Why mitmproxy could not listen in mode ``spec`` on ``host:port``, or None. Checked before
    it starts, where the error would come after a start-up banner and name mitmproxy's options."""
    from mitmproxy.proxy.mode_specs import ProxyMode

    try:
        mode = ProxyMode.parse(spec)
    except ValueError as exc:
        return f"--mode {spec}: {exc} (one of {', '.join(MODES)})"
    listen_port = mode.listen_port(port)
    if listen_port is None:
        return None
    address = (mode.listen_host(host) or "0.0.0.0", listen_port)  # noqa: S104 - mitmproxy's default
    kind = socket.SOCK_DGRAM if mode.transport_protocol == "udp" else socket.SOCK_STREAM
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, kind) as probe:
        if kind == socket.SOCK_STREAM:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server does
        try:
            probe.bind(address)
        except OSError as exc:
            return f"cannot listen on {address[0]}:{address[1]}: {exc.strerror or exc}"
    return None


def check_upstream_ca(path: Path) -> str | None:
    """Why ``path`` cannot serve as ``--upstream-ca`` (a PEM file of CA certificates), or None."""
    from cryptography import x509

    try:
        pem = path.read_bytes()
    except OSError as exc:
        return f"--upstream-ca {path}: {exc.strerror or exc}"
    try:
        x509.load_pem_x509_certificates(pem)
    except ValueError:
        return f"--upstream-ca {path}: no PEM certificate in this file"
    return None


def main(args: argparse.Namespace) -> int:
    # Check what we can before mitmproxy starts, so mistakes read as one clear line.
    try:
        parse_upstreams(args.upstream)
    except ValueError as exc:
        print(f"tollhouse run: {exc}", file=sys.stderr)
        return 2
    if error := first_error(args.rules):
        print(f"tollhouse run: {error} (tollhouse check lists every file)", file=sys.stderr)
        return 2
    problem = (
        check_mode(args.mode, args.host, args.port)
        or (check_upstream_ca(args.upstream_ca) if args.upstream_ca else None)
        or weakening_option(args.certs)
    )
    if problem:
        print(f"tollhouse run: {problem}", file=sys.stderr)
        return 2
    try:
        passphrase = passphrase_from_env(args.passphrase_env)
        # A new CA is name-constrained to the catalog; an existing one is reused as it is.
        permitted, _ = permitted_names(args.rules, [])
        ca = ensure_interception_ca(args.certs, permitted, passphrase)
        problem = ca_problem(args.certs, allow_unconstrained=args.allow_unconstrained_ca)
    except (OSError, ValueError, CAError) as exc:
        problem = str(exc)
    if problem:
        print(f"tollhouse run: {problem}", file=sys.stderr)
        return 2
    private_data_dir(args.data)
    print(
        f"tollhouse: proxy on {args.host}:{args.port} ({args.mode}); clients trust {ca}; "
        f"audit log in {args.data.resolve() / 'audit.duckdb'}",
        file=sys.stderr,
        flush=True,
    )
    from mitmproxy.tools import main as mitmproxy_main

    run = mitmproxy_main.mitmweb if args.web else mitmproxy_main.mitmdump
    return int(run(mitmproxy_args(args, passphrase)) or 0)
