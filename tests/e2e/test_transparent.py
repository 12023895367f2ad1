"""Transparent mode, as a network team deploys it for servers whose software ignores proxy settings.

Three network namespaces the test creates (nothing is routed outside this machine):

    client 10.200.1.2 --veth-- 10.200.1.1 router 10.200.2.1 --veth-- 10.200.2.2/.3 "internet"

The router loads deploy/nftables.conf (its names filled in) and runs ``tollhouse run --mode
transparent``; the internet namespace holds the fake provider (10.200.2.2:443, "api.openai.com")
and another HTTPS server with its own CA (10.200.2.3:443, "files.example.test"). The client has no
proxy settings at all: names come from its /etc/hosts (``ip netns exec`` mounts
/etc/netns/<ns>/hosts there), it trusts the gateway's CA the way a server would
(``NODE_EXTRA_CA_CERTS``, ``--cacert``), and its packets to port 443 are redirected by the router.
Clients: the official ``openai`` Node SDK on Node's built-in fetch, which ignores HTTPS_PROXY, and
curl. Needs root, ``ip`` and ``nft``; the Node part needs node and the SDK (scripts/test installs
both into .venv/node).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import BIN, ROOT, FakeProvider, Gateway, stop

pytestmark = pytest.mark.e2e

NODE_MODULES = ROOT / ".venv" / "node" / "node_modules"
TAG = f"th{os.getpid() % 100000}"
CLIENT, ROUTER, NET = f"{TAG}c", f"{TAG}r", f"{TAG}i"
CLIENT_IP, ROUTER_LAN, ROUTER_WAN, PROVIDER_IP, OTHER_IP = (
    "10.200.1.2",
    "10.200.1.1",
    "10.200.2.1",
    "10.200.2.2",
    "10.200.2.3",
)
GATEWAY_PORT = 8443
HOSTS = f"127.0.0.1 localhost\n{PROVIDER_IP} api.openai.com\n{OTHER_IP} files.example.test\n"


def why_not() -> str | None:
    """Why namespaces cannot be used here, or None."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (run the suite as root, e.g. in CI)"
    for tool in ("ip", "nft", "curl"):
        if shutil.which(tool) is None:
            return f"{tool} not found (apt-get install iproute2 nftables curl)"
    probe = subprocess.run(["ip", "netns", "add", f"{TAG}p"], capture_output=True, check=False)
    if probe.returncode != 0:
        return f"cannot create a network namespace: {probe.stderr.decode(errors='replace')}"
    subprocess.run(["ip", "netns", "del", f"{TAG}p"], check=False)
    return None


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def in_ns[T](ns: str, work: Callable[[], T]) -> T:
    """Run ``work`` in a thread that joined namespace ``ns``: the sockets it opens live there."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            with open(f"/run/netns/{ns}") as handle:
                os.setns(handle.fileno(), os.CLONE_NEWNET)
            box["value"] = work()
        except BaseException as exc:  # re-raised in the caller
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def wait_listening(ns: str, address: str, port: int, proc: subprocess.Popen, log: Path) -> None:
    import socket

    def probe() -> bool:
        with contextlib.suppress(OSError), socket.create_connection((address, port), timeout=0.5):
            return True
        return False

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if in_ns(ns, probe):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{address}:{port} not listening in {ns}:\n{log.read_text()[-3000:]}")


def start_in(ns: str, log: Path, *argv: str) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv], stdout=out, stderr=subprocess.STDOUT
        )


def no_proxy_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    for key in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"):
        env.pop(key, None)
    return {**env, **extra}


@dataclass
class Net:
    gateway: Gateway
    provider: FakeProvider
    other: FakeProvider  # a non-AI HTTPS server with its own CA

    def provider_requests(self, server: FakeProvider) -> list[dict]:
        return in_ns(NET, server.requests)


def build_namespaces() -> None:
    for ns in (CLIENT, ROUTER, NET):
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "link", "add", f"{TAG}c0", "netns", CLIENT, "type", "veth", "peer", f"{TAG}r0")
    sh("ip", "link", "set", f"{TAG}r0", "netns", ROUTER)
    sh("ip", "link", "add", f"{TAG}r1", "netns", ROUTER, "type", "veth", "peer", f"{TAG}i0")
    sh("ip", "link", "set", f"{TAG}i0", "netns", NET)
    for ns, dev, address in (
        (CLIENT, "c0", f"{CLIENT_IP}/24"),
        (ROUTER, "r0", f"{ROUTER_LAN}/24"),
        (ROUTER, "r1", f"{ROUTER_WAN}/24"),
        (NET, "i0", f"{PROVIDER_IP}/24"),
        (NET, "i0", f"{OTHER_IP}/24"),
    ):
        sh("ip", "-n", ns, "addr", "add", address, "dev", f"{TAG}{dev}")
        sh("ip", "-n", ns, "link", "set", f"{TAG}{dev}", "up")
    sh("ip", "-n", CLIENT, "route", "add", "default", "via", ROUTER_LAN)
    sh("ip", "-n", NET, "route", "add", "default", "via", ROUTER_WAN)
    sh("ip", "netns", "exec", ROUTER, "sysctl", "-qw", "net.ipv4.ip_forward=1")


def load_deploy_rules(tmp: Path) -> None:
    """deploy/nftables.conf as shipped, with this test's interface, network and user (the gateway
    runs as root here, so root's own connections are the ones exempted from the redirect)."""
    text = (ROOT / "deploy" / "nftables.conf").read_text()
    text = text.replace('define LAN_IF = "eth1"', f'define LAN_IF = "{TAG}r0"')
    text = text.replace("define LAN_NET = 10.0.0.0/8", "define LAN_NET = 10.200.1.0/24")
    text = text.replace('"tollhouse"', '"root"')
    rules = tmp / "nftables.conf"
    rules.write_text(text)
    sh("ip", "netns", "exec", ROUTER, "nft", "-f", str(rules))


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    if reason := why_not():
        pytest.skip(f"transparent-mode test skipped: {reason}")
    tmp = tmp_path_factory.mktemp("transparent")
    etc = Path("/etc/netns") / CLIENT
    procs: list[subprocess.Popen] = []
    try:
        build_namespaces()
        load_deploy_rules(tmp)
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(HOSTS)
        fake = [sys.executable, str(ROOT / "scripts" / "fake_provider.py"), "--port", "443"]
        servers = []
        for name, address, extra in (
            ("provider", PROVIDER_IP, []),
            ("other", OTHER_IP, ["--extra-host", "files.example.test"]),
        ):
            tls, log = tmp / name, tmp / f"{name}.log"
            tls.mkdir()
            proc = start_in(NET, log, *fake, "--host", address, "--tls-dir", str(tls), *extra)
            procs.append(proc)
            wait_listening(NET, address, 443, proc, log)
            servers.append(FakeProvider(port=443, ca=tls / "ca.pem", url=f"https://{address}"))
        data, certs, log = tmp / "data", tmp / "certs", tmp / "gateway.log"
        gateway_proc = start_in(
            ROUTER,
            log,
            str(BIN / "tollhouse"),
            "run",
            "--mode",
            "transparent",
            "--host",
            "0.0.0.0",  # inside the test's own namespaces
            "--port",
            str(GATEWAY_PORT),
            "--rules",
            str(ROOT / "rules"),
            "--data",
            str(data),
            "--certs",
            str(certs),
            # The providers are reached at the connection's original destination; only their CA
            # (the fake provider's own) must be trusted.
            "--upstream-ca",
            str(servers[0].ca),
        )
        procs.append(gateway_proc)
        wait_listening(ROUTER, ROUTER_LAN, GATEWAY_PORT, gateway_proc, log)
        gateway = Gateway(
            port=GATEWAY_PORT,
            ca=certs / "ca.pem",
            data=data,
            rules=ROOT / "rules",
            log=log,
            proxy="",  # there is no proxy to configure: that is the point
        )
        yield Net(gateway=gateway, provider=servers[0], other=servers[1])
    finally:
        for proc in reversed(procs):
            stop(proc)
        for ns in (CLIENT, ROUTER, NET):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        shutil.rmtree(etc, ignore_errors=True)
        with contextlib.suppress(OSError):
            etc.parent.rmdir()  # /etc/netns, when this test created it


def client(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", CLIENT, *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


NODE_CLIENT = """
const OpenAI = require("openai");
const client = new OpenAI({ apiKey: "sk-test-transparent" });
client.chat.completions
  .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: process.argv[1] }] })
  .then((r) => console.log(JSON.stringify({ text: r.choices[0].message.content })))
  .catch((e) => { console.error(String(e), e.cause); process.exit(1); });
"""


def received(net: Net, server: FakeProvider, marker: str) -> list[dict]:
    return [r for r in net.provider_requests(server) if marker in (r.get("body") or "")]


def test_node_sdk_without_proxy_settings_is_intercepted_and_audited(net):
    if shutil.which("node") is None or not (NODE_MODULES / "openai").is_dir():
        pytest.skip(f"node or the openai Node SDK missing (npm install openai in {NODE_MODULES})")
    marker = "transparent-node-7c1f"
    env = no_proxy_env(NODE_EXTRA_CA_CERTS=str(net.gateway.ca), NODE_PATH=str(NODE_MODULES))
    result = client(["node", "-e", NODE_CLIENT, f"Say hello ({marker})"], env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"]  # the fake provider's answer came back
    [upstream] = received(net, net.provider, marker)
    assert upstream["path"] == "/v1/chat/completions"
    rows = net.gateway.audit(
        "SELECT client_addr, host, provider, status, decision FROM exchanges "
        "WHERE host = 'api.openai.com' AND client_addr = '10.200.1.2'"
    )
    assert {"provider": "openai", "status": 200, "decision": "allow"}.items() <= rows[0].items()


def test_curl_without_proxy_settings_is_intercepted_and_a_planted_key_redacted(net):
    key = "AKIA" + "TRANSPARENTQ7K2M"
    body = json.dumps(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"curl-tp {key}"}]}
    )
    result = client(
        [
            "curl",
            "-sS",
            "--fail-with-body",
            "--cacert",
            str(net.gateway.ca),
            "-H",
            "authorization: Bearer sk-test",
            "-H",
            "content-type: application/json",
            "--data",
            body,
            "https://api.openai.com/v1/chat/completions",
        ],
        no_proxy_env(),
    )
    assert result.returncode == 0, result.stderr + result.stdout
    [upstream] = received(net, net.provider, "curl-tp")
    assert key not in json.dumps(upstream)  # the DLP ran on the redirected connection
    before = len(net.gateway.audit("SELECT id FROM exchanges WHERE client_addr = '10.200.1.2'"))
    assert before >= 1


def test_non_ai_https_passes_untouched_with_its_own_certificate_and_is_not_audited(net):
    marker = "transparent-other-5d0e"
    url = "https://files.example.test/v1/chat/completions"
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": marker}]})

    def curl(ca: Path) -> subprocess.CompletedProcess[str]:
        argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", str(ca)]
        return client(
            [*argv, "-H", "content-type: application/json", "--data", body, url], no_proxy_env()
        )

    # Verified against the server's own CA only: a certificate minted by the gateway would fail.
    own = curl(net.other.ca)
    assert (own.returncode, own.stdout) == (0, "200"), own.stderr
    assert curl(net.gateway.ca).returncode == 60  # 60: the gateway's CA does not vouch for it
    assert received(net, net.other, marker)  # the request reached the server itself
    time.sleep(1.0)  # give the audit writer time to write a row it should not write
    rows = net.gateway.audit(
        "SELECT count(*) AS n FROM exchanges WHERE host = 'files.example.test'", expect=1
    )
    assert rows == [{"n": 0}]
    assert "files.example.test" not in net.gateway.log.read_text()
