"""End-to-end harness: a real gateway (``tollhouse run``) and the fake provider, as processes.

Clients are configured the way a user would configure them: ``HTTPS_PROXY`` pointing at the
gateway and ``SSL_CERT_FILE`` at the gateway's CA. The gateway sends every AI host to the fake
provider (``--upstream '*=127.0.0.1:P'``) and verifies it against the fake provider's CA.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} not listening after {timeout}s:\n{log.read_text()[-4000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class FakeProvider:
    port: int
    ca: Path
    url: str

    def requests(self) -> list[dict]:
        """What the provider received (its request log), read directly, not through the gateway."""
        import httpx

        with httpx.Client(verify=str(self.ca)) as client:
            return client.get(f"{self.url}/_fake/requests").json()

    def clear(self) -> None:
        import httpx

        with httpx.Client(verify=str(self.ca)) as client:
            client.delete(f"{self.url}/_fake/requests")


@dataclass
class Gateway:
    port: int
    ca: Path
    data: Path
    rules: Path
    log: Path
    proxy: str

    def env(self) -> dict[str, str]:
        """Environment for a client process that uses the gateway like a user would."""
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(HTTPS_PROXY=self.proxy, HTTP_PROXY=self.proxy, SSL_CERT_FILE=str(self.ca))
        return env

    def audit(self, sql: str, *, expect: int = 1, timeout: float = 15.0) -> list[dict]:
        """Run ``tollhouse audit --json SQL`` until it returns at least ``expect`` rows."""
        deadline = time.monotonic() + timeout
        rows: list[dict] = []
        while True:
            result = subprocess.run(
                [str(BIN / "tollhouse"), "audit", "--data", str(self.data), "--json", sql],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if result.returncode == 0:
                rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
                if len(rows) >= expect:
                    return rows
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"audit query returned {len(rows)} rows, wanted {expect}: {result.stderr}"
                )
            time.sleep(0.3)


@pytest.fixture(scope="session")
def fake_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeProvider]:
    fake, proc = start_fake_provider(tmp_path_factory.mktemp("fake-tls"))
    try:
        yield fake
    finally:
        stop(proc)


def start_gateway(
    base: Path, fake: FakeProvider, rules: Path | None = None, extra_args: Sequence[str] = ()
) -> tuple[Gateway, subprocess.Popen]:
    port = free_port()
    data, certs = base / "data", base / "certs"
    log = base / "gateway.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                str(BIN / "tollhouse"),
                "run",
                "--port",
                str(port),
                "--rules",
                str(rules or ROOT / "rules"),
                "--data",
                str(data),
                "--certs",
                str(certs),
                "--upstream",
                f"*=127.0.0.1:{fake.port}",
                "--upstream-ca",
                str(fake.ca),
                *extra_args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=base,
        )
    wait_for_port(port, proc, log)
    gateway = Gateway(
        port=port,
        ca=certs / "ca.pem",
        data=data,
        rules=rules or ROOT / "rules",
        log=log,
        proxy=f"http://127.0.0.1:{port}",
    )
    return gateway, proc


@pytest.fixture(scope="session")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, fake_provider: FakeProvider
) -> Iterator[Gateway]:
    base = tmp_path_factory.mktemp("gateway")
    gw, proc = start_gateway(base, fake_provider)
    try:
        yield gw
    finally:
        stop(proc)


@pytest.fixture
def as_user(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    """Configure this process's HTTP clients (SDKs) the way a user would: proxy + CA by env."""
    for key in list(os.environ):
        if key.lower().endswith("_proxy"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HTTPS_PROXY", gateway.proxy)
    monkeypatch.setenv("SSL_CERT_FILE", str(gateway.ca))
    return gateway


def start_fake_provider(tls: Path) -> tuple[FakeProvider, subprocess.Popen]:
    """A fake provider process with its own CA in ``tls`` (the session's, or another one that
    the gateway does not trust)."""
    port = free_port()
    log = tls / "fake.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "scripts" / "fake_provider.py"),
                "--port",
                str(port),
                "--tls-dir",
                str(tls),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_for_port(port, proc, log)
    return FakeProvider(port=port, ca=tls / "ca.pem", url=f"https://127.0.0.1:{port}"), proc


def user_client(gateway: Gateway, **kwargs) -> httpx.Client:
    """A plain HTTP client set up as a user would: the gateway as proxy, its CA trusted."""
    import ssl

    import httpx

    context = ssl.create_default_context(cafile=str(gateway.ca))
    return httpx.Client(proxy=gateway.proxy, verify=context, timeout=30, **kwargs)
