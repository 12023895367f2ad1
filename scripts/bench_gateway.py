#!/usr/bin/env python3
"""What the gateway adds to an LLM call: the same requests sent DIRECT to the fake provider and
THROUGH a real gateway, side by side in one run on this machine.

The script starts its own fake provider (``scripts/fake_provider.py``) and gateway (``tollhouse
run`` with the repository's ``rules/``, every AI host sent to the fake provider) on free loopback
ports, with temporary folders that are removed on exit (Ctrl-C included). For each request shape

- ``openai-1k``: an OpenAI chat completion, JSON, with a ~1 KB prompt;
- ``openai-50k``: the same with a ~50 KB prompt (still under the 64 KiB off-loop threshold);
- ``openai-stream``: a streamed chat completion (64 content events), timed to the first body
  byte and to the last;
- ``anthropic``: an Anthropic message, JSON, ~1 KB prompt;

it sends one unmeasured warm-up round (2 x C requests, at least 10), then ``--requests``
requests sequentially and the same number at ``--concurrency`` in flight, once DIRECT (httpx to
the fake provider, with the real provider's Host and SNI, trusting the fake's CA) and once
THROUGH the gateway (httpx with the gateway as HTTPS proxy, trusting the gateway's CA). Direct
and gateway runs alternate per shape and mode so both see the same machine load. Connections are
kept alive, so the figures are the steady-state cost per request (TLS handshakes and CONNECTs
happen in the warm-up). The fake provider answers in ~1-3 ms.

How to read the table: latencies are client-side milliseconds per request (p50/p90/p99).
``added`` is gateway p50 minus direct p50: the gateway's own work per request (parse, DLP,
injection, token count, budget, audit, a second TLS hop). ``ratio`` is gateway p50 / direct p50;
the fake provider answers in about a millisecond, so ratios here are far above what a user sees
against a real provider (hundreds of ms to seconds): read ``added`` as the cost, and the ratio as
the regression signal between runs on the same machine. ``req/s`` is requests over the wall time
of the run; at concurrency it shows how far the gateway (one event loop) scales, and the
concurrent latencies include the time requests wait in its queue. The peak RSS is the gateway
process's VmHWM at the end. The client, the fake provider and the gateway share this machine's
cores, so compare runs made on the same machine only.

    .venv/bin/python scripts/bench_gateway.py [--requests N] [--concurrency C] [--quick]
                                              [--max-seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0
STREAM_EVENTS = 64
MODES = ("sequential", "concurrent")
NEUTRAL_SENTENCES = (
    "The nightly billing job reconciles invoices against the ledger and writes a short report.",
    "Please summarize the main risks of this design in plain language for the review meeting.",
    "When the queue is full the worker waits a little and then tries again with a longer pause.",
    "The team prefers short answers with bullet points and examples written in Python.",
    "Our customers asked whether the export could include the orders of the last quarter.",
    "The service reads its settings at start-up and keeps them until the next deployment.",
    "Each report lists the slowest endpoints first, then the ones with the most errors.",
    "The migration moves old records to cold storage and keeps an index of what moved where.",
)


# --- the request shapes ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Shape:
    """One kind of request: where it goes and what it carries."""

    name: str
    host: str
    path: str
    headers: dict[str, str]
    body: bytes
    stream: bool = False


def prose(size: int, seed: int = 11) -> str:
    """About ``size`` characters of bland prose: no PII, secrets or injection phrases, so every
    stage runs in full and none blocks."""
    rng = random.Random(seed)
    parts: list[str] = []
    length = 0
    while length < size:
        sentence = rng.choice(NEUTRAL_SENTENCES)
        parts.append(sentence)
        length += len(sentence) + 1
    return " ".join(parts)[:size]


def openai_shape(name: str, prompt_size: int, stream: bool = False) -> Shape:
    body: dict[str, object] = {
        "model": "gpt-4o-mini",
        "max_tokens": 256,
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": prose(prompt_size)},
        ],
    }
    headers = {
        "authorization": "Bearer sk-bench-not-a-real-key",
        "content-type": "application/json",
    }
    if stream:
        body["stream"] = True
        headers["x-fake-behavior"] = f"chunks={STREAM_EVENTS}"
    return Shape(name, "api.openai.com", "/v1/chat/completions", headers, _json(body), stream)


def anthropic_shape(name: str, prompt_size: int) -> Shape:
    body = {
        "model": "claude-3-5-haiku-latest",
        "max_tokens": 256,
        "system": "You are a concise assistant.",
        "messages": [{"role": "user", "content": prose(prompt_size)}],
    }
    headers = {
        "x-api-key": "sk-ant-bench-not-a-real-key",
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
    }
    return Shape(name, "api.anthropic.com", "/v1/messages", headers, _json(body))


def _json(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def shapes() -> list[Shape]:
    return [
        openai_shape("openai-1k", 1_000),
        openai_shape("openai-50k", 50_000),
        openai_shape("openai-stream", 1_000, stream=True),
        anthropic_shape("anthropic", 1_000),
    ]


# --- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}:\n{tail(log)}")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} not listening after {START_TIMEOUT_S:.0f}s:\n{tail(log)}")


def tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def clean_env() -> dict[str, str]:
    """This environment without proxy settings: every hop here is on loopback."""
    return {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}


@contextmanager
def process(args: list[str], port: int, log: Path, cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``args`` (logging to ``log``) until it listens on ``port``; stop it on exit. It gets a
    session of its own, so a Ctrl-C reaches only this script, which stops it after the load."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=clean_env(),
            start_new_session=True,
        )
    try:
        wait_for_port(port, proc, log)
        yield proc
    finally:
        stop(proc)


@contextmanager
def fake_provider(base: Path) -> Iterator[tuple[int, Path]]:
    """The fake provider on a free port; yields its port and CA file."""
    tls, port = base / "fake-tls", free_port()
    tls.mkdir()
    script = str(ROOT / "scripts" / "fake_provider.py")
    args = [sys.executable, script, "--port", str(port), "--tls-dir", str(tls)]
    args.append("--quiet")
    with process(args, port, base / "fake.log", base):
        yield port, tls / "ca.pem"


@dataclass(frozen=True, slots=True)
class GatewayProcess:
    port: int
    ca: Path
    pid: int
    log: Path


@contextmanager
def gateway(base: Path, upstream_port: int, upstream_ca: Path) -> Iterator[GatewayProcess]:
    """``tollhouse run`` on a free port, every AI host sent to the fake provider."""
    port, home = free_port(), base / "gateway"
    home.mkdir()
    tollhouse = BIN / "tollhouse"
    if not tollhouse.exists():
        raise RuntimeError(f"{tollhouse} not found: run this script with .venv/bin/python")
    args = [
        str(tollhouse), "run", "--host", LOOPBACK, "--port", str(port),
        "--rules", str(ROOT / "rules"), "--data", str(home / "data"),
        "--certs", str(home / "certs"),
        "--upstream", f"*={LOOPBACK}:{upstream_port}", "--upstream-ca", str(upstream_ca),
    ]  # fmt: skip
    log = home / "gateway.log"
    with process(args, port, log, home) as proc:
        yield GatewayProcess(port, home / "certs" / "ca.pem", proc.pid, log)


def memory_kib(pid: int, field_name: str) -> int | None:
    """A ``/proc/PID/status`` memory field (``VmHWM``, ``VmRSS``) in KiB, or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


# --- clients ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """How a client reaches the provider: DIRECT (``proxy`` None) or through the gateway."""

    name: str
    ca: Path
    proxy: str | None = None
    upstream_port: int = 0

    def client(self, connections: int) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        return httpx.AsyncClient(
            proxy=self.proxy,
            verify=ssl.create_default_context(cafile=str(self.ca)),
            timeout=REQUEST_TIMEOUT_S,
            limits=limits,
            trust_env=False,
        )

    def request(self, client: httpx.AsyncClient, shape: Shape) -> httpx.Request:
        if self.proxy:
            return client.build_request(
                "POST",
                f"https://{shape.host}{shape.path}",
                headers=shape.headers,
                content=shape.body,
            )
        # DIRECT: connect to the fake provider's port, but say the real host in Host and SNI
        # (the fake's certificate covers it), as a client reaching the provider would.
        return client.build_request(
            "POST",
            f"https://{LOOPBACK}:{self.upstream_port}{shape.path}",
            headers={**shape.headers, "host": shape.host},
            content=shape.body,
            extensions={"sni_hostname": shape.host},
        )


# --- load ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class Run:
    """What one run of requests measured, in seconds."""

    total: list[float] = field(default_factory=list)
    first_byte: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    wall: float = 0.0

    @property
    def done(self) -> int:
        return len(self.total) + self.errors

    def throughput(self) -> float:
        return len(self.total) / self.wall if self.wall > 0 else 0.0


async def one_request(client: httpx.AsyncClient, request: httpx.Request, run: Run) -> None:
    """Send ``request``, read its whole body, and record the time to its first and last byte."""
    start = time.perf_counter()
    first: float | None = None
    try:
        response = await client.send(request, stream=True)
        try:
            async for chunk in response.aiter_raw():
                if first is None and chunk:
                    first = time.perf_counter() - start
        finally:
            await response.aclose()
    except httpx.HTTPError as e:
        run.errors += 1
        run.first_error = run.first_error or f"{type(e).__name__}: {e}"
        return
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        run.errors += 1
        run.first_error = run.first_error or f"HTTP {response.status_code}"
        return
    run.total.append(elapsed)
    run.first_byte.append(first if first is not None else elapsed)


async def load(
    client: httpx.AsyncClient, route: Route, shape: Shape, n: int, concurrency: int, cap_s: float
) -> Run:
    """``n`` requests with ``concurrency`` in flight; no new request starts after ``cap_s``."""
    run = Run()
    issued = 0
    start = time.perf_counter()
    deadline = start + cap_s

    async def worker() -> None:
        nonlocal issued
        while issued < n and time.perf_counter() < deadline:
            issued += 1
            await one_request(client, route.request(client, shape), run)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, n)))))
    run.wall = time.perf_counter() - start
    return run


@dataclass(frozen=True, slots=True)
class Settings:
    requests: int
    concurrency: int
    warmup: int
    cap_s: float


@dataclass(slots=True)
class Pair:
    """The DIRECT and GATEWAY runs of one shape in one mode."""

    shape: Shape
    mode: str
    direct: Run
    gateway: Run


async def bench_shape(shape: Shape, routes: tuple[Route, Route], settings: Settings) -> list[Pair]:
    """Warm up both routes, then run each mode on both, alternating DIRECT and GATEWAY."""
    clients = [route.client(settings.concurrency) for route in routes]
    try:
        for route, client in zip(routes, clients, strict=True):
            warm = await load(client, route, shape, settings.warmup, settings.concurrency, 60)
            if not warm.total:
                raise RuntimeError(f"{shape.name} {route.name}: warm-up failed: {warm.first_error}")
        pairs = []
        for mode in MODES:
            concurrency = 1 if mode == "sequential" else settings.concurrency
            runs = [
                await load(client, route, shape, settings.requests, concurrency, settings.cap_s)
                for route, client in zip(routes, clients, strict=True)
            ]
            pairs.append(Pair(shape, mode, runs[0], runs[1]))
        return pairs
    finally:
        for client in clients:
            await client.aclose()


async def bench(routes: tuple[Route, Route], settings: Settings) -> list[Pair]:
    pairs: list[Pair] = []
    for shape in shapes():
        print(f"  {shape.name}...", file=sys.stderr, flush=True)
        pairs += await bench_shape(shape, routes, settings)
    return pairs


# --- report -------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def ms(values: list[float]) -> tuple[float, float, float]:
    """p50, p90 and p99 in milliseconds."""
    return (
        percentile(values, 50) * 1000,
        percentile(values, 90) * 1000,
        percentile(values, 99) * 1000,
    )


HEADER = (
    f"{'shape':<14} {'measure':<10} {'mode':<10} {'n':>5} "
    f"{'direct ms p50/p90/p99':>22} {'gateway ms p50/p90/p99':>23} "
    f"{'added':>7} {'ratio':>6} {'direct/s':>9} {'gw/s':>7} {'errors':>6}"
)


def rows(pair: Pair) -> list[str]:
    """One table row per measure: the whole response, or for streams first and last byte."""
    measures = [("response", "total")]
    if pair.shape.stream:
        measures = [("first byte", "first_byte"), ("last byte", "total")]
    out = []
    for label, attr in measures:
        d, g = ms(getattr(pair.direct, attr)), ms(getattr(pair.gateway, attr))
        n = min(len(pair.direct.total), len(pair.gateway.total))
        errors = pair.direct.errors + pair.gateway.errors
        out.append(
            f"{pair.shape.name:<14} {label:<10} {pair.mode:<10} {n:>5} "
            f"{d[0]:>8.2f}{d[1]:>7.2f}{d[2]:>7.2f} {g[0]:>9.2f}{g[1]:>7.2f}{g[2]:>7.2f} "
            f"{g[0] - d[0]:>7.2f} {g[0] / d[0]:>5.1f}x "
            f"{pair.direct.throughput():>9.0f} {pair.gateway.throughput():>7.0f} {errors:>6}"
        )
    return out


def report(pairs: list[Pair], settings: Settings, gw: GatewayProcess, rss_start: int | None) -> int:
    """Print the table and memory; return the number of failed requests."""
    print(
        f"{settings.requests} requests per run, sequential and at concurrency "
        f"{settings.concurrency}, after {settings.warmup} warm-up requests per shape and route"
    )
    print(HEADER)
    for pair in pairs:
        for line in rows(pair):
            print(line)
    errors = 0
    for pair in pairs:
        for name, run in (("direct", pair.direct), ("gateway", pair.gateway)):
            errors += run.errors
            if run.errors:
                print(
                    f"{pair.shape.name} {pair.mode} {name}: {run.errors} failed: {run.first_error}"
                )
            elif run.done < settings.requests:
                print(f"{pair.shape.name} {pair.mode} {name}: stopped after {run.done} (time cap)")
    peak, now = memory_kib(gw.pid, "VmHWM"), memory_kib(gw.pid, "VmRSS")
    print(
        f"gateway peak RSS (VmHWM): {_mib(peak)} MiB; now {_mib(now)} MiB; "
        f"after start-up {_mib(rss_start)} MiB"
    )
    return errors


def _mib(kib: int | None) -> str:
    return "?" if kib is None else f"{kib / 1024:.0f}"


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="The module docstring explains how to read the table.",
    )
    parser.add_argument(
        "--requests", type=int, default=None, help="measured requests per run (default 200)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="requests in flight in the concurrent runs (default 8)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a small run: 30 requests per run (unless --requests)"
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=20.0,
        help="no run starts a new request after this many seconds (default 20)",
    )
    args = parser.parse_args(argv)
    if args.requests is None:
        args.requests = 30 if args.quick else 200
    if args.requests < 1 or args.concurrency < 1 or args.max_seconds <= 0:
        parser.error("--requests, --concurrency and --max-seconds must be positive")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the context managers that stop processes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    settings = Settings(
        args.requests, args.concurrency, max(10, 2 * args.concurrency), args.max_seconds
    )
    signal.signal(signal.SIGTERM, _terminate)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    with tempfile.TemporaryDirectory(prefix="tollhouse-bench-") as tmp:
        base = Path(tmp)
        print("starting the fake provider and the gateway...", file=sys.stderr, flush=True)
        with fake_provider(base) as (fake_port, fake_ca), gateway(base, fake_port, fake_ca) as gw:
            rss_start = memory_kib(gw.pid, "VmRSS")
            routes = (
                Route("direct", fake_ca, upstream_port=fake_port),
                Route("gateway", gw.ca, proxy=f"http://{LOOPBACK}:{gw.port}"),
            )
            try:
                pairs = asyncio.run(bench(routes, settings))
            except RuntimeError as e:
                print(f"error: {e}\ngateway log:\n{tail(gw.log)}", file=sys.stderr)
                return 1
            errors = report(pairs, settings, gw, rss_start)
    return 1 if errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; processes stopped, temporary files removed", file=sys.stderr)
        sys.exit(130)
