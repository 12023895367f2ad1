"""Only AI hosts are decrypted: anything else passes with its own certificate, unrecorded."""

from __future__ import annotations

import http.client
import ssl
import subprocess

import pytest

pytestmark = pytest.mark.e2e


def test_other_https_hosts_pass_through_untouched(gateway, fake_provider):
    # "localhost" is not in the catalog. Through the gateway, the client must see the server's own
    # certificate (issued by the fake provider's CA), which proves the gateway did not decrypt.
    conn = http.client.HTTPSConnection(
        "127.0.0.1",
        gateway.port,
        context=ssl.create_default_context(cafile=str(fake_provider.ca)),
        timeout=30,
    )
    conn.set_tunnel("localhost", fake_provider.port)
    conn.request("GET", "/_fake/requests")
    response = conn.getresponse()
    assert response.status == 200
    issuer = dict(x[0] for x in conn.sock.getpeercert()["issuer"])
    assert "Tollhouse Interception" not in issuer.get("commonName", "")
    conn.close()

    # The same host with the gateway's CA fails: the certificate is not the gateway's.
    with pytest.raises(ssl.SSLCertVerificationError):
        conn = http.client.HTTPSConnection(
            "127.0.0.1",
            gateway.port,
            context=ssl.create_default_context(cafile=str(gateway.ca)),
            timeout=30,
        )
        conn.set_tunnel("localhost", fake_provider.port)
        conn.request("GET", "/_fake/requests")

    # Nothing recorded: either no audit log yet at all, or no row for that host.
    if (gateway.data / "audit.duckdb").exists():
        rows = gateway.audit("select count(*) as n from exchanges where host = 'localhost'")
        assert rows[0]["n"] == 0


def test_curl_chat_through_the_gateway(gateway):
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--fail-with-body",
            "--proxy",
            gateway.proxy,
            "--cacert",
            str(gateway.ca),
            "-H",
            "authorization: Bearer sk-test",
            "-H",
            "content-type: application/json",
            "--data",
            '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"curl says hi"}]}',
            "https://api.openai.com/v1/chat/completions",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"chat.completion"' in result.stdout


def test_unknown_endpoint_on_an_ai_host_is_read_recorded_and_sent(gateway):
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--proxy",
            gateway.proxy,
            "--cacert",
            str(gateway.ca),
            "-H",
            "authorization: Bearer sk-test",
            "https://api.openai.com/v1/models/unknown-thing",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = gateway.audit(
        "select operation, decision from exchanges where path = '/v1/models/unknown-thing'"
    )
    # Deny by default: the generic path read it (a GET: its path, query and headers), so it goes.
    assert rows[0] == {"operation": "unknown", "decision": "allow"}


def test_gateway_ca_key_is_private(gateway):
    key = gateway.ca.parent / "ca-key.pem"
    assert key.stat().st_mode & 0o077 == 0
    assert "BEGIN CERTIFICATE" in gateway.ca.read_text()


def test_reverse_mode_serves_a_provider_at_the_gateways_own_address(tmp_path, fake_provider):
    from tests.e2e.conftest import ROOT, start_gateway, stop
    from tollhouse.cli import main

    # Clients name the gateway itself: its CA must be allowed to vouch for that name.
    ca = ["ca", "init", "--rules", str(ROOT / "rules"), "--certs", str(tmp_path / "certs")]
    assert main([*ca, "--permit", "localhost"]) == 0
    gateway, proc = start_gateway(
        tmp_path, fake_provider, extra_args=["--mode", "reverse:https://api.openai.com"]
    )
    try:
        result = subprocess.run(
            [
                "curl",
                "-sS",
                "--fail-with-body",
                "--cacert",
                str(gateway.ca),
                "-H",
                "authorization: Bearer sk-test",
                "-H",
                "content-type: application/json",
                "--data",
                '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}',
                f"https://localhost:{gateway.port}/v1/chat/completions",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert '"chat.completion"' in result.stdout
        rows = gateway.audit("select host, provider, tokens_in from exchanges")
        assert rows[0]["host"] == "api.openai.com" and rows[0]["provider"] == "openai"
        assert rows[0]["tokens_in"] > 0
    finally:
        stop(proc)
