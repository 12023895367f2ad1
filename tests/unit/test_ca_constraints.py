"""The interception CA's name constraints: it vouches for the catalog's AI hosts only. A leaf for
any other name, or an IP, issued under it fails verification in OpenSSL and in Python's ssl."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography import x509

from tollhouse import nameconstraints, pki
from tollhouse.catalog import load_catalog

RULES = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture(scope="module")
def constrained() -> tuple[x509.Certificate, pki.PrivateKey]:
    names, uncovered = nameconstraints.catalog_names(load_catalog(RULES / "hosts.yaml"))
    assert uncovered == []
    return pki.create_ca("Constrained Test CA", permitted=names)


def test_the_catalog_becomes_narrow_subtrees():
    names, _ = nameconstraints.catalog_names(load_catalog(RULES / "hosts.yaml"))
    for name in (
        "api.openai.com",
        "openai.azure.com",  # *.openai.azure.com
        "bedrock-runtime.us-east-1.amazonaws.com",  # bedrock-runtime.*.amazonaws.com, per region
        "bedrock-runtime-fips.us-gov-west-1.amazonaws.com",
        "europe-west4-aiplatform.googleapis.com",  # *-aiplatform.googleapis.com, per region
        "generativelanguage.googleapis.com",
    ):
        assert name in names
    for too_broad in ("amazonaws.com", "googleapis.com", "azure.com", "openai.com"):
        assert too_broad not in names
    assert "chatgpt.com" not in names  # observed, never decrypted


def test_patterns_that_cannot_be_narrow_are_reported_not_widened(tmp_path):
    (tmp_path / "hosts.yaml").write_text(
        "version: 1\napis:\n"
        "  - {provider: a, api: openai, hosts: ['*.example.com', 'x-*.example.org']}\n"
        "  - {provider: b, api: openai, hosts: ['api.b.example']}\n"
        "consumer_apps:\n  - {name: c, hosts: [chat.c.example], handling: inspect}\n"
    )
    names, uncovered = nameconstraints.catalog_names(load_catalog(tmp_path / "hosts.yaml"))
    assert names == ["api.b.example", "chat.c.example"]
    assert uncovered == ["*.example.com", "x-*.example.org"]


def test_the_ca_carries_critical_constraints_excluding_every_ip(constrained):
    cert, _ = constrained
    ext = cert.extensions.get_extension_for_class(x509.NameConstraints)
    assert ext.critical
    excluded = {str(n.value) for n in ext.value.excluded_subtrees or []}
    assert excluded == {"0.0.0.0/0", "::/0"}


def _files(tmp_path: Path, ca, names: list[str], ips: list[str] = ()) -> tuple[Path, Path, Path]:
    ca_cert, ca_key = ca
    leaf, key = pki.issue_certificate(ca_cert, ca_key, names, list(ips))
    paths = tmp_path / "leaf.pem", tmp_path / "leaf-key.pem", tmp_path / "ca.pem"
    paths[0].write_bytes(pki.certificate_pem(leaf))
    paths[1].write_bytes(pki.private_key_pem(key))
    paths[2].write_bytes(pki.certificate_pem(ca_cert))
    return paths


def _openssl_verify(tmp_path: Path, ca, names: list[str], ips: list[str] = ()):
    leaf, _, ca_file = _files(tmp_path, ca, names, ips)
    return subprocess.run(
        ["openssl", "verify", "-x509_strict", "-CAfile", str(ca_file), str(leaf)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    "names",
    [
        ["api.openai.com"],
        ["myres.openai.azure.com"],
        ["*.openai.azure.com"],
        ["bedrock-runtime.eu-west-1.amazonaws.com"],
        ["us-central1-aiplatform.googleapis.com"],
    ],
)
def test_openssl_accepts_catalog_names(tmp_path, constrained, names):
    result = _openssl_verify(tmp_path, constrained, names)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("names", "ips"),
    [
        (["www.bank.example"], []),
        (["s3.amazonaws.com"], []),  # AWS, but not Bedrock
        (["www.googleapis.com"], []),
        (["api.openai.com", "www.bank.example"], []),  # one bad name spoils the certificate
        (["api.openai.com"], ["127.0.0.1"]),
        (["api.openai.com"], ["::1"]),
    ],
)
def test_openssl_refuses_other_names_and_ips(tmp_path, constrained, names, ips):
    result = _openssl_verify(tmp_path, constrained, names, ips)
    assert result.returncode != 0
    assert "subtree violation" in result.stdout + result.stderr


def _handshake(tmp_path: Path, ca, name: str) -> None:
    """A real TLS handshake on loopback: server with a leaf for ``name``, client trusting the CA
    and asking for ``name``."""
    leaf, key, ca_file = _files(tmp_path, ca, [name])
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(leaf, key)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(ca_file))
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    try:
        with (
            socket.create_connection(listener.getsockname(), timeout=5) as raw,
            client_ctx.wrap_socket(raw, server_hostname=name) as tls,
        ):
            assert tls.recv(2) == b"ok"
    finally:
        thread.join(5)
        listener.close()


def test_python_ssl_accepts_a_catalog_host(tmp_path, constrained):
    _handshake(tmp_path, constrained, "api.anthropic.com")


def test_python_ssl_refuses_a_bank(tmp_path, constrained):
    with pytest.raises(ssl.SSLCertVerificationError, match="subtree violation"):
        _handshake(tmp_path, constrained, "www.bank.example")


def test_an_unconstrained_ca_would_have_vouched_for_the_bank(tmp_path):
    # The control: the same leaf under a CA without constraints verifies.
    _handshake(tmp_path, pki.create_ca("Unconstrained"), "www.bank.example")


def test_allows_matches_what_verifiers_enforce(constrained):
    limits = nameconstraints.of(constrained[0])
    assert limits is not None
    ok = [x509.DNSName("api.openai.com"), x509.DNSName("*.openai.azure.com")]
    bad = [x509.DNSName(n) for n in ("www.bank.example", "openai.com", "api.openai.com.")]
    import ipaddress

    bad.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    assert all(nameconstraints.allows(limits, n) for n in ok)
    assert not any(nameconstraints.allows(limits, n) for n in bad)


@pytest.mark.parametrize("name", ["com", "", "exa mple.com", "a..b", "-" * 70 + ".com"])
def test_permit_refuses_too_broad_or_malformed_names(name):
    with pytest.raises(ValueError):
        nameconstraints.check_permit(name)
    assert nameconstraints.check_permit("GW.Corp.Example.") == "gw.corp.example"
