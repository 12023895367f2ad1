"""The interception CA and the certificates it issues: chains verify, files are private, CAs are
reused and never overwritten, and mitmproxy loads our CA as its own."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from tollhouse import pki


@pytest.fixture(scope="module")
def ca() -> tuple[x509.Certificate, pki.PrivateKey]:
    return pki.create_ca("Test CA")


def _verify(leaf: x509.Certificate, ca_cert: x509.Certificate, name: x509.GeneralName) -> None:
    verifier = (
        PolicyBuilder()
        .store(Store([ca_cert]))
        .time(datetime.datetime.now(datetime.UTC))
        .build_server_verifier(name)  # type: ignore[arg-type]
    )
    chain = verifier.verify(leaf, [])
    assert chain[-1] == ca_cert


def test_ca_has_the_extensions_clients_require(ca):
    cert, key = ca
    assert cert.subject == cert.issuer
    assert cert.public_key() == key.public_key()
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.key_cert_sign and ku.crl_sign
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc > datetime.timedelta(days=3000)


def test_issued_leaf_chains_to_the_ca_for_dns_wildcard_and_ip(ca):
    ca_cert, ca_key = ca
    leaf, leaf_key = pki.issue_certificate(
        ca_cert, ca_key, ["api.openai.com", "*.openai.azure.com"], ["127.0.0.1", "::1"]
    )
    assert leaf.public_key() == leaf_key.public_key()
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in eku
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest

    _verify(leaf, ca_cert, x509.DNSName("api.openai.com"))
    _verify(leaf, ca_cert, x509.DNSName("myres.openai.azure.com"))
    _verify(leaf, ca_cert, x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    with pytest.raises(VerificationError):
        _verify(leaf, ca_cert, x509.DNSName("api.anthropic.com"))
    other_ca, _ = pki.create_ca("Other CA")
    with pytest.raises(VerificationError):
        _verify(leaf, other_ca, x509.DNSName("api.openai.com"))


def test_issue_needs_a_name(ca):
    with pytest.raises(ValueError):
        pki.issue_certificate(ca[0], ca[1], [], [])


def test_real_tls_handshake_with_strict_verification(ca, tmp_path):
    ca_cert, ca_key = ca
    leaf, leaf_key = pki.issue_certificate(ca_cert, ca_key, ["api.anthropic.com"], ["127.0.0.1"])
    (tmp_path / "leaf.pem").write_bytes(pki.certificate_pem(leaf))
    (tmp_path / "leaf-key.pem").write_bytes(pki.private_key_pem(leaf_key))
    (tmp_path / "ca.pem").write_bytes(pki.certificate_pem(ca_cert))

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf-key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    client_ctx.verify_flags |= ssl.VERIFY_X509_STRICT  # Python 3.13's default
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        client_ctx.wrap_socket(raw, server_hostname="api.anthropic.com") as tls,
    ):
        assert tls.recv(2) == b"ok"
    thread.join(5)
    listener.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ensure_creates_private_files(tmp_path):
    certs = tmp_path / "certs"
    ca_path = pki.ensure_interception_ca(certs)
    assert ca_path == certs / "ca.pem"
    assert _mode(certs) == 0o700
    assert _mode(certs / "ca-key.pem") == 0o600
    assert _mode(certs / "mitmproxy-ca.pem") == 0o600
    cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == "Tollhouse Interception CA"
    assert b"PRIVATE KEY" not in ca_path.read_bytes()
    assert (certs / "mitmproxy-ca-cert.pem").read_bytes() == ca_path.read_bytes()
    combined = (certs / "mitmproxy-ca.pem").read_bytes()
    assert b"PRIVATE KEY" in combined and ca_path.read_bytes() in combined


def test_ensure_reuses_an_existing_ca(tmp_path):
    first = pki.ensure_interception_ca(tmp_path).read_bytes()
    key = (tmp_path / "ca-key.pem").read_bytes()
    again = pki.ensure_interception_ca(tmp_path).read_bytes()
    assert again == first
    assert (tmp_path / "ca-key.pem").read_bytes() == key


def test_ensure_rebuilds_missing_mitmproxy_files_from_the_ca(tmp_path):
    pki.ensure_interception_ca(tmp_path)
    (tmp_path / "mitmproxy-ca.pem").unlink()
    (tmp_path / "mitmproxy-ca-cert.pem").unlink()
    pki.ensure_interception_ca(tmp_path)
    assert (tmp_path / "ca.pem").read_bytes() in (tmp_path / "mitmproxy-ca.pem").read_bytes()
    assert _mode(tmp_path / "mitmproxy-ca.pem") == 0o600


def test_ensure_refuses_a_world_readable_key(tmp_path):
    pki.ensure_interception_ca(tmp_path)
    key = tmp_path / "ca-key.pem"
    os.chmod(key, 0o644)
    with pytest.raises(pki.UnsafeKeyFileError, match=r"ca-key\.pem.*0644.*chmod 600"):
        pki.ensure_interception_ca(tmp_path)


def test_ensure_refuses_a_group_readable_mitmproxy_file(tmp_path):
    pki.ensure_interception_ca(tmp_path)
    os.chmod(tmp_path / "mitmproxy-ca.pem", 0o640)
    with pytest.raises(pki.UnsafeKeyFileError, match=r"mitmproxy-ca\.pem"):
        pki.ensure_interception_ca(tmp_path)


def test_ensure_refuses_a_key_without_its_certificate(tmp_path):
    pki.ensure_interception_ca(tmp_path)
    (tmp_path / "ca.pem").unlink()
    with pytest.raises(pki.CAError, match=r"ca\.pem does not"):
        pki.ensure_interception_ca(tmp_path)
    assert not (tmp_path / "ca.pem").exists()


def test_ensure_refuses_a_mitmproxy_ca_that_differs(tmp_path):
    pki.ensure_interception_ca(tmp_path)
    other = tmp_path / "other"
    pki.ensure_interception_ca(other)
    os.replace(other / "mitmproxy-ca.pem", tmp_path / "mitmproxy-ca.pem")
    with pytest.raises(pki.CAError, match="different CA"):
        pki.ensure_interception_ca(tmp_path)


def test_ensure_adopts_a_mitmproxy_generated_ca(tmp_path):
    from mitmproxy.certs import CertStore

    CertStore.create_store(tmp_path, "mitmproxy", 2048)
    store = CertStore.from_store(tmp_path, "mitmproxy", 2048)
    ca_path = pki.ensure_interception_ca(tmp_path)
    cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    assert cert.fingerprint(hashes.SHA256()) == store.default_ca.fingerprint()
    assert _mode(tmp_path / "ca-key.pem") == 0o600


def test_mitmproxy_loads_our_ca_and_issues_leaves_that_chain_to_it(tmp_path):
    from mitmproxy.certs import CertStore

    ca_path = pki.ensure_interception_ca(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    store = CertStore.from_store(tmp_path, "mitmproxy", 2048)
    ours = x509.load_pem_x509_certificate(ca_path.read_bytes())
    assert store.default_ca.fingerprint() == ours.fingerprint(hashes.SHA256())
    for name, data in before.items():  # mitmproxy regenerated nothing
        assert (tmp_path / name).read_bytes() == data

    entry = store.get_cert("api.openai.com", [x509.DNSName("api.openai.com")])
    leaf = x509.load_pem_x509_certificate(entry.cert.to_pem())
    _verify(leaf, ours, x509.DNSName("api.openai.com"))
