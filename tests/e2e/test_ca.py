"""A running gateway signs with its name-constrained CA: the certificate a client gets for
api.openai.com chains to that CA and verifies (OpenSSL and Python's ssl, strict), and names
nothing the CA may not vouch for, although the upstream's own certificate lists IP addresses."""

from __future__ import annotations

import socket
import ssl
import subprocess

import pytest
from cryptography import x509

from tests.e2e.conftest import BIN, free_port
from tollhouse import nameconstraints

pytestmark = pytest.mark.e2e


def leaf_from_gateway(gateway, host: str) -> bytes:
    context = ssl.create_default_context(cafile=str(gateway.ca))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as raw:
        raw.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
        assert raw.recv(4096).startswith(b"HTTP/1.1 200")
        with context.wrap_socket(raw, server_hostname=host) as tls:  # verifies, or raises
            der = tls.getpeercert(binary_form=True)
    assert der
    return der


def test_the_gateways_leaf_chains_to_the_constrained_ca(gateway, tmp_path):
    ca = x509.load_pem_x509_certificate(gateway.ca.read_bytes())
    limits = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert limits.critical
    der = leaf_from_gateway(gateway, "api.openai.com")
    leaf = x509.load_der_x509_certificate(der)
    leaf.verify_directly_issued_by(ca)
    names = list(leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    assert x509.DNSName("api.openai.com") in names
    assert not [n for n in names if isinstance(n, x509.IPAddress)]
    assert all(nameconstraints.allows(limits.value, n) for n in names)

    (tmp_path / "leaf.pem").write_bytes(ssl.DER_cert_to_PEM_cert(der).encode())
    result = subprocess.run(
        [
            *("openssl", "verify", "-x509_strict", "-CAfile", str(gateway.ca)),
            *("-verify_hostname", "api.openai.com", str(tmp_path / "leaf.pem")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deployment_on_the_running_gateways_folders(gateway):
    result = subprocess.run(
        [
            *(str(BIN / "tollhouse"), "check", "--deployment", "--rules", str(gateway.rules)),
            *("--data", str(gateway.data), "--certs", str(gateway.ca.parent)),
            *("--port", str(free_port())),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok     CA constraints:" in result.stdout and "IP addresses excluded" in result.stdout
