#!/usr/bin/env python3
"""The fake provider: the one stand-in for the internet in tests, benchmarks and demos.

It serves the LLM providers' HTTPS APIs in their real wire formats (OpenAI and compatibles, Azure
OpenAI, Anthropic, Gemini and Vertex AI, Bedrock, Cohere) from one TLS port, with a certificate
valid for every catalog host (``CATALOG_HOSTS``) and for 127.0.0.1 / localhost, so clients and the
gateway can reach it under the real host names (via the gateway's upstream or DNS overrides).

Usage::

    scripts/fake_provider.py --port 8443 --tls-dir /tmp/fake-tls [--host 127.0.0.1]

It prints ``fake provider listening on https://HOST:PORT (CA: DIR/ca.pem)`` once ready (``--port 0``
picks a free port), logs one line per request to stderr (never credentials), and exits cleanly on
SIGTERM or SIGINT.

Behaviour, from the ``x-fake-behavior`` header or ``[[fake:...]]`` markers anywhere in the prompt
(items separated by commas, semicolons or spaces):

``echo``          the answer is the user text, joined by newlines: shows what reached the provider
``error=STATUS``  answer STATUS in the provider's error shape (429 adds ``retry-after: 1``)
``slow=MS``       wait MS ms before answering and between stream events
``break``         send about half the body (stream events) and then reset the connection
``chunks=N``      N content events: the default answer is N words long; echo is cut in <= N pieces
``split``         send each stream event in two HTTP chunks a few ms apart, so that a reader sees
                  events cut in the middle (as TCP may deliver them)
``linger=MS``     after a stream's last event, wait MS ms before ending the body (a client may
                  close in between, as litellm's does)

Input tokens are the whitespace-separated words in all request text, output tokens the words of
the answer (see ``fake_providers/common.py``).

``GET /_fake/requests`` (any host) lists the recorded requests, oldest first, each with method,
host, path (with query), headers (complete, credentials included: it is a test double), body and
the parsed JSON; ``DELETE /_fake/requests`` clears them.

A websocket handshake on any path is accepted (``fake_providers/realtime.py``): each message the
client then sends is recorded in the same log, ``method`` ``WEBSOCKET``, ``body`` its payload as
text, ``json`` parsed, and ``websocket`` ``{"opcode": "text"|"binary"|"close", "length", ...}``.

Stdlib plus ``cryptography`` only; the formats live in the ``fake_providers`` package next to it.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import re
import signal
import socket
import sys
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from fake_providers import anthropic, bedrock, cohere, gemini, openai, realtime
from fake_providers.common import (
    Answer,
    Behavior,
    FakeError,
    Incoming,
    Prompt,
    Reply,
    answer_for,
    dumps,
    parse_behavior,
)
from fake_providers.tls import server_context

CATALOG_HOSTS: tuple[str, ...] = (
    "api.openai.com",
    "us.api.openai.com",
    "eu.api.openai.com",
    "*.openai.azure.com",
    "*.cognitiveservices.azure.com",
    "*.services.ai.azure.com",
    "api.anthropic.com",
    "generativelanguage.googleapis.com",
    "aiplatform.googleapis.com",
    # a wildcard covers a whole left-most label only, so *-aiplatform cannot be one
    "us-central1-aiplatform.googleapis.com",
    "us-east5-aiplatform.googleapis.com",
    "europe-west1-aiplatform.googleapis.com",
    "europe-west4-aiplatform.googleapis.com",
    "asia-northeast1-aiplatform.googleapis.com",
    "bedrock-runtime.us-east-1.amazonaws.com",
    "bedrock-runtime.us-west-2.amazonaws.com",
    "bedrock-runtime.eu-central-1.amazonaws.com",
    "bedrock-runtime.eu-west-1.amazonaws.com",
    "bedrock-runtime.ap-northeast-1.amazonaws.com",
    "bedrock-runtime-fips.us-east-1.amazonaws.com",
    "bedrock-runtime-fips.us-west-2.amazonaws.com",
    "api.mistral.ai",
    "codestral.mistral.ai",
    "api.cohere.com",
    "api.cohere.ai",
    "api.groq.com",
    "api.together.xyz",
    "api.together.ai",
    "api.fireworks.ai",
    "api.deepseek.com",
    "api.x.ai",
    "openrouter.ai",
    "api.perplexity.ai",
    "router.huggingface.co",
    "api-inference.huggingface.co",
)
"""Every AI API host the certificate covers. Keep in step with rules/hosts.yaml (or pass it with
``--hosts-yaml``)."""

LOCAL_NAMES = ("localhost",)
LOCAL_IPS = ("127.0.0.1", "::1")
FAKE_PATH = "/_fake/requests"
SPLIT_PAUSE = 0.02  # seconds between the two halves of an event with ``split``

Parse = Callable[[Incoming], Prompt]
Render = Callable[[Incoming, Prompt, Answer], Reply]


@dataclass(frozen=True, slots=True)
class Route:
    family: str
    pattern: re.Pattern[str]
    parse: Parse
    render: Render


def _route(family: str, pattern: str, parse: Parse, render: Render) -> Route:
    return Route(family, re.compile(pattern), parse, render)


# First match wins; matched on the path without its query, for POST only.
ROUTES: tuple[Route, ...] = (
    _route(
        "bedrock",
        r"^/model/(?P<model>[^/]+)/(?P<action>converse|converse-stream)$",
        bedrock.parse_converse,
        bedrock.render_converse,
    ),
    _route(
        "bedrock",
        r"^/model/(?P<model>[^/]+)/(?P<action>invoke|invoke-with-response-stream)$",
        bedrock.parse_invoke,
        bedrock.render_invoke,
    ),
    _route(
        "anthropic",
        r"/publishers/anthropic/models/(?P<model>[^/:]+):(?:rawPredict|streamRawPredict)$",
        anthropic.parse,
        anthropic.render,
    ),
    _route(
        "gemini",
        r"/models/(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)$",
        gemini.parse,
        gemini.render,
    ),
    _route("anthropic", r"^/v1/messages$", anthropic.parse, anthropic.render),
    _route(
        "anthropic", r"^/v1/messages/count_tokens$", anthropic.parse, anthropic.render_count_tokens
    ),
    _route("cohere", r"^/v2/chat$", cohere.parse, cohere.render),
    _route(
        "openai",
        r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions$",
        openai.parse_chat,
        openai.render_chat,
    ),
    _route(
        "openai",
        r"^/openai/deployments/(?P<deployment>[^/]+)/completions$",
        openai.parse_completions,
        openai.render_completions,
    ),
    _route(
        "openai",
        r"^/openai/deployments/(?P<deployment>[^/]+)/embeddings$",
        openai.parse_embeddings,
        openai.render_embeddings,
    ),
    _route("openai", r"(?:^|/)chat/completions$", openai.parse_chat, openai.render_chat),
    _route("openai", r"(?:^|/)responses$", openai.parse_responses, openai.render_responses),
    _route("openai", r"(?:^|/)completions$", openai.parse_completions, openai.render_completions),
    _route("openai", r"(?:^|/)embeddings$", openai.parse_embeddings, openai.render_embeddings),
)

FAMILIES = {m.FAMILY: m for m in (openai, anthropic, gemini, bedrock, cohere)}


def family_for(host: str, path: str, headers: dict[str, str]) -> str:
    """Which provider's error shape an unknown endpoint answers in: by host, else by path."""
    if host == "api.anthropic.com" or "anthropic-version" in headers:
        return "anthropic"
    if host.endswith("googleapis.com") or path.startswith("/v1beta/") or "/projects/" in path:
        return "gemini"
    if host.startswith("bedrock-runtime.") or path.startswith("/model/"):
        return "bedrock"
    if host.startswith("api.cohere.") or path.startswith("/v2/"):
        return "cohere"
    return "openai"


def error_reply(family: str, status: int, message: str) -> Reply:
    reply = FAMILIES[family].error(status, message)
    if status == 429:
        reply.headers["retry-after"] = "1"
    return reply


def host_name(header: str) -> str:
    """The Host header without its port: ``api.openai.com:443`` -> ``api.openai.com``."""
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def hosts_from_yaml(path: Path) -> list[str]:
    """The certificate names in a host catalog (rules/hosts.yaml): every ``hosts`` entry under
    ``apis`` and ``consumer_apps``. A ``*`` inside a label (``*-aiplatform.googleapis.com``) cannot
    be a certificate wildcard, so such patterns are left out; CATALOG_HOSTS lists concrete names."""
    import yaml  # only needed with --hosts-yaml

    data = yaml.safe_load(path.read_text()) or {}
    names: list[str] = []
    for section in ("apis", "consumer_apps"):
        for entry in data.get(section) or []:
            for host in entry.get("hosts") or []:
                first, *rest = str(host).split(".")
                if (first == "*" or "*" not in first) and not any("*" in x for x in rest):
                    names.append(str(host))
    return names


_SECRET_QUERY = re.compile(r"(?i)\b(key|api[-_]?key|access_token|token|sig|signature)=[^&]*")


def safe_path(path: str) -> str:
    """The path for logs: credentials in the query (Gemini's ``?key=``) replaced."""
    return _SECRET_QUERY.sub(r"\1=REDACTED", path)


class FakeProviderServer(ThreadingHTTPServer):
    """A threading HTTPS server; TLS handshakes happen in the handler thread, not in accept()."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # benchmarks open many connections at once

    def __init__(self, address: tuple[str, int], context: Any, keep: int, quiet: bool) -> None:
        self.context = context
        self.quiet = quiet
        self.recorded: deque[dict[str, Any]] = deque(maxlen=keep)
        self.lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        err = sys.exc_info()[1]
        print(f"{client_address[0]} connection ended: {type(err).__name__}: {err}", file=sys.stderr)


class _Aborted(Exception):
    """The ``break`` behaviour reset the connection."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as separate small writes; with Nagle's algorithm on, the body
    # would wait ~40 ms for the client's delayed ACK on every response.
    disable_nagle_algorithm = True
    server_version = "fake-provider/1"
    sys_version = ""
    timeout = 60
    server: FakeProviderServer

    def setup(self) -> None:
        super().setup()
        self.connection.do_handshake()

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _handle logs one line itself, without the raw request line

    def log_message(self, format: str, *args: Any) -> None:
        print(f"{self.client_address[0]} {safe_path(format % args)}", file=sys.stderr)

    # --- one request ---------------------------------------------------------------------------

    def _handle(self) -> None:
        started = time.monotonic()
        path, _, query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        host = host_name(headers.get("host", ""))
        body = self._read_body(headers)
        behavior = Behavior()
        if path == FAKE_PATH:
            reply = self._request_log()
        else:
            self._record(host, headers, body)
            if realtime.is_upgrade(headers):
                self._websocket(host, headers, started)
                return
            behavior, reply = self._answer(host, path, query, headers, body)
        if behavior.slow_ms:
            time.sleep(behavior.slow_ms / 1000)
        try:
            self._send(reply, behavior)
        except _Aborted:
            note = " (broken on purpose)"
        else:
            note = ""
        if self.server.quiet:
            return
        ms = (time.monotonic() - started) * 1000
        print(
            f"{self.client_address[0]} {self.command} {host} {safe_path(self.path)} -> "
            f"{reply.status} ({ms:.0f} ms){note}",
            file=sys.stderr,
            flush=True,
        )

    def _answer(
        self, host: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> tuple[Behavior, Reply]:
        route, params = None, {}
        if self.command == "POST":
            for candidate in ROUTES:
                m = candidate.pattern.search(path)
                if m:
                    route, params = candidate, {k: unquote(v) for k, v in m.groupdict().items()}
                    break
        family = route.family if route else family_for(host, path, headers)
        behavior = Behavior()
        try:
            if route is None:
                raise FakeError(404, FAMILIES[family].not_found(self.command, path))
            try:
                data = json.loads(body or b"null")
            except ValueError:
                raise FakeError(400, "We could not parse the JSON body of your request.") from None
            if not isinstance(data, dict):
                raise FakeError(400, "The request body must be a JSON object.")
            incoming = Incoming(
                self.command, host, path, dict(parse_qsl(query)), headers, params, data
            )
            prompt = route.parse(incoming)
            behavior = parse_behavior(headers.get("x-fake-behavior"), prompt.texts)
            if behavior.error:
                raise FakeError(behavior.error, f"fake provider: error {behavior.error} as asked")
            return behavior, route.render(incoming, prompt, answer_for(prompt, behavior))
        except FakeError as e:
            return behavior, error_reply(family, e.status, e.message)

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(headers.get("content-length") or 0))
        encoding = headers.get("content-encoding", "").lower()
        try:
            if encoding == "gzip":
                return gzip.decompress(body)
            if encoding == "deflate":
                return zlib.decompress(body)
        except (OSError, zlib.error):
            pass
        return body

    def _record(self, host: str, headers: dict[str, str], body: bytes) -> None:
        text = body.decode("utf-8", "replace")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        entry = {
            "time": datetime.datetime.now(datetime.UTC).isoformat(),
            "method": self.command,
            "host": host,
            "path": self.path,
            "headers": headers,
            "body": text,
            "json": parsed,
        }
        with self.server.lock:
            self.server.recorded.append(entry)

    def _websocket(self, host: str, headers: dict[str, str], started: float) -> None:
        """Serve a websocket until it closes, recording every message the client sends."""

        def record(message: dict[str, Any]) -> None:
            payload = message.pop("payload")
            entry = {
                "time": datetime.datetime.now(datetime.UTC).isoformat(),
                "method": "WEBSOCKET",
                "host": host,
                "path": self.path,
                "headers": {},
                "body": payload.decode("utf-8", "replace"),
                "json": message.pop("json", None),
                "websocket": {**message, "length": len(payload)},
            }
            with self.server.lock:
                self.server.recorded.append(entry)

        self.close_connection = True
        try:
            how = realtime.serve(self.rfile, self.wfile, headers["sec-websocket-key"], record)
        except (realtime.ProtocolError, OSError) as e:
            how = f"broken: {type(e).__name__}"
        if not self.server.quiet:
            ms = (time.monotonic() - started) * 1000
            print(
                f"{self.client_address[0]} WEBSOCKET {host} {safe_path(self.path)} -> {how} "
                f"({ms:.0f} ms)",
                file=sys.stderr,
                flush=True,
            )

    def _request_log(self) -> Reply:
        with self.server.lock:
            if self.command == "DELETE":
                self.server.recorded.clear()
                return Reply(200, {"Content-Type": "application/json"}, b'{"cleared":true}')
            if self.command == "GET":
                return Reply(
                    200, {"Content-Type": "application/json"}, dumps(list(self.server.recorded))
                )
        return Reply(405, {"Content-Type": "application/json", "Allow": "GET, DELETE"}, b"{}")

    # --- writing -------------------------------------------------------------------------------

    def _send(self, reply: Reply, behavior: Behavior) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.events is None:
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if behavior.break_stream:
                self.wfile.write(reply.body[: len(reply.body) // 2])
                self._abort()
            self.wfile.write(reply.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        cut = max(1, len(reply.events) // 2) if behavior.break_stream else -1
        for i, event in enumerate(reply.events):
            if i == cut:
                self._abort()
            if i and behavior.slow_ms:
                time.sleep(behavior.slow_ms / 1000)
            halves = (event[: len(event) // 2], event[len(event) // 2 :])
            for n, part in enumerate(halves if behavior.split else (event,)):
                if n:
                    time.sleep(SPLIT_PAUSE)  # long enough for the halves to arrive apart
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        if behavior.linger_ms:
            self.wfile.flush()
            time.sleep(behavior.linger_ms / 1000)
        self.wfile.write(b"0\r\n\r\n")

    def _abort(self) -> None:
        """Drop the connection: TCP FIN with no terminating chunk and no TLS close_notify, so the
        client gets what was sent so far and then an unexpected end of the stream. (A TCP reset
        would make the client's kernel discard events it had not read yet.)"""
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()
        raise _Aborted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0: any free)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--tls-dir", type=Path, required=True, help="where the CA and cert live")
    parser.add_argument("--extra-host", action="append", default=[], help="another DNS name")
    parser.add_argument("--hosts-yaml", type=Path, help="also cover the hosts of this catalog")
    parser.add_argument("--keep", type=int, default=1000, help="how many requests to remember")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)

    hosts = [*CATALOG_HOSTS, *LOCAL_NAMES, *args.extra_host]
    if args.hosts_yaml:
        hosts += [h for h in hosts_from_yaml(args.hosts_yaml) if h not in hosts]
    ips = [*LOCAL_IPS, *([args.host] if args.host not in (*LOCAL_IPS, "0.0.0.0", "::") else [])]
    context = server_context(args.tls_dir, hosts, ips)
    server = FakeProviderServer((args.host, args.port), context, args.keep, args.quiet)
    port = server.server_address[1]

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    thread.start()
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(
        f"fake provider listening on https://{shown}:{port} (CA: {args.tls_dir / 'ca.pem'})",
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    thread.join()
    print("fake provider stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
