"""A browser set up the way a network team sets up laptops: the gateway's PAC URL as its proxy
configuration and the gateway's CA in its trust store (NSS, through scripts/install-ca). An AI
host goes through the gateway and is audited; another host goes direct and is not."""

from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, FakeProvider, Gateway

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Chromium not installed (apt-get install chromium; scripts/test does it as root)",
)

# The page fetches the AI host (no-cors: the request is made and TLS must verify, but the
# response stays opaque to the page), then a path on its own direct host, then reports.
PAGE = """<!doctype html><title>pac</title><script>
async function attempt(url, options) {
  try { const r = await fetch(url, options); return "ok " + r.type; }
  catch (e) { return "error " + e; }
}
(async () => {
  const ai = await attempt("https://api.openai.com/v1/models/MARKER", {mode: "no-cors"});
  const direct = await attempt("/direct-MARKER");
  await fetch("/report", {method: "POST", body: JSON.stringify({ai, direct})});
})();
</script>"""


class DirectHost(http.server.ThreadingHTTPServer):
    """A plain HTTP server standing for any non-AI site; it records what reaches it."""

    def __init__(self, page: str) -> None:
        self.page = page.encode()
        self.seen: list[dict] = []
        self.report: dict | None = None
        self.reported = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: DirectHost

    def do_GET(self) -> None:
        self.server.seen.append(
            {"path": self.path, "host": self.headers.get("host"), "via": self.headers.get("via")}
        )
        body = self.server.page if self.path == "/" else b"direct"
        self.send_response(200)
        self.send_header("content-type", "text/html" if self.path == "/" else "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.server.report = json.loads(self.rfile.read(length))
        self.send_response(204)
        self.end_headers()
        self.server.reported.set()

    def log_message(self, *args: object) -> None:
        pass


def trust_ca_in_nss(ca: Path, home: Path) -> list[str]:
    """The gateway's CA in an NSS database under ``home`` (where Chromium on Linux reads user
    roots), installed by scripts/install-ca as on a laptop. Without certutil, Chromium is told to
    accept the CA's key instead (a flag, not the trust store; the PAC path is still real)."""
    if shutil.which("certutil"):
        env = {"PATH": os.environ["PATH"], "HOME": str(home)}
        subprocess.run(
            ["sh", str(ROOT / "scripts/install-ca"), "--nss", str(ca)],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        return []
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    cert = x509.load_pem_x509_certificate(ca.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    return [f"--ignore-certificate-errors-spki-list={base64.b64encode(digest.finalize()).decode()}"]


def test_a_browser_on_the_pac_file_sends_ai_hosts_through_the_gateway_and_the_rest_direct(
    gateway: Gateway, fake_provider: FakeProvider, tmp_path: Path
):
    marker = f"pac{uuid.uuid4().hex[:12]}"
    direct = DirectHost(PAGE.replace("MARKER", marker))
    threading.Thread(target=direct.serve_forever, daemon=True).start()
    home = tmp_path / "home"
    home.mkdir()
    extra = trust_ca_in_nss(gateway.ca, home)
    port = direct.server_address[1]
    # direct.test resolves to the direct host inside Chromium only. Loopback names such as
    # 127.0.0.1 would bypass any proxy configuration, so the PAC would never be asked.
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--proxy-pac-url=http://127.0.0.1:{gateway.port}/proxy.pac",
        "--host-resolver-rules=MAP direct.test 127.0.0.1",
        *extra,
        f"http://direct.test:{port}/",
    ]
    env = {**{k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}}
    env["HOME"] = str(home)
    log = (tmp_path / "chromium.log").open("w")
    browser = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        assert direct.reported.wait(30), (tmp_path / "chromium.log").read_text()[-3000:]
    finally:
        os.killpg(browser.pid, signal.SIGTERM)  # the browser and its helper processes
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait()
        direct.shutdown()
        log.close()

    # Through the gateway: TLS verified against the gateway's CA, the provider reached, audited.
    assert direct.report is not None and direct.report["ai"] == "ok opaque", direct.report
    upstream = [r for r in fake_provider.requests() if marker in json.dumps(r)]
    assert len(upstream) == 1
    rows = gateway.audit(f"SELECT host, path FROM exchanges WHERE path LIKE '%{marker}%'", expect=1)
    assert rows == [{"host": "api.openai.com", "path": f"/v1/models/{marker}"}]

    # Direct: the page and its fetch reached the direct host, which the gateway could not even
    # have resolved (direct.test exists only in Chromium's resolver), and nothing was audited.
    assert direct.report["direct"] == "ok basic"
    paths = [(s["path"], s["host"], s["via"]) for s in direct.seen]
    assert (f"/direct-{marker}", f"direct.test:{port}", None) in paths
    time.sleep(0.5)  # an audit row for the direct fetch would be written by now
    assert gateway.audit(
        f"SELECT count(*) AS n FROM exchanges WHERE host LIKE '%direct.test%' "
        f"OR path LIKE '%direct-{marker}%'",
        expect=1,
    ) == [{"n": 0}]
