"""`tollhouse ca` (init, show, export, rotate, bring your own), `tollhouse run`'s refusals of a
weakened interception, and `tollhouse check --deployment`."""

from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from tollhouse import nameconstraints, pki
from tollhouse.cli import main

RULES = Path(__file__).resolve().parents[2] / "rules"


def ca(certs: Path, *args: str) -> int:
    action, *rest = args
    return main(["ca", action, "--rules", str(RULES), "--certs", str(certs), *rest])


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_creates_a_constrained_ca_with_private_key_files(tmp_path, capsys):
    certs = tmp_path / "certs"
    assert ca(certs, "init", "--permit", "gw.corp.example") == 0
    assert "clients must trust" in capsys.readouterr().out
    cert = load(certs / "ca.pem")
    limits = nameconstraints.of(cert)
    assert limits is not None
    names = nameconstraints.permitted_dns(limits)
    assert "api.openai.com" in names and "gw.corp.example" in names
    assert mode(certs / "ca-key.pem") == 0o600 and mode(certs / "mitmproxy-ca.pem") == 0o600
    before = (certs / "ca-key.pem").read_bytes()
    assert ca(certs, "init") == 2  # never over an existing CA
    assert "rotate" in capsys.readouterr().err
    assert (certs / "ca-key.pem").read_bytes() == before


def test_ensure_keeps_an_existing_unconstrained_ca(tmp_path):
    old, key = pki.create_ca("Legacy")
    tmp_path.joinpath("ca.pem").write_bytes(pki.certificate_pem(old))
    fd = os.open(tmp_path / "ca-key.pem", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, pki.private_key_pem(key))
    os.close(fd)
    pki.ensure_interception_ca(tmp_path, permitted=["api.openai.com"])
    assert load(tmp_path / "ca.pem") == old  # reused, not replaced by a constrained one


def test_passphrase_encrypts_the_key_and_mitmproxy_opens_it(tmp_path, monkeypatch, capsys):
    from mitmproxy.certs import CertStore

    monkeypatch.setenv("CA_PASS", "correct horse battery")
    certs = tmp_path / "certs"
    assert ca(certs, "init", "--passphrase-env", "CA_PASS") == 0
    assert b"ENCRYPTED PRIVATE KEY" in (certs / "ca-key.pem").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in (certs / "mitmproxy-ca.pem").read_bytes()
    store = CertStore.from_store(certs, "mitmproxy", 2048, passphrase=b"correct horse battery")
    assert store.default_ca.fingerprint() == load(certs / "ca.pem").fingerprint(hashes.SHA256())
    with pytest.raises(pki.CAError, match="needs a passphrase"):
        pki.ensure_interception_ca(certs)
    monkeypatch.delenv("CA_PASS")
    assert ca(tmp_path / "other", "init", "--passphrase-env", "CA_PASS") == 2
    assert "CA_PASS" in capsys.readouterr().err


def test_show_and_export(tmp_path, capsys):
    certs = tmp_path / "certs"
    ca(certs, "init")
    capsys.readouterr()
    assert ca(certs, "show", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["constraints"].endswith("IP addresses excluded")
    assert shown["key"] == "mode 0600, unencrypted"
    cert = load(certs / "ca.pem")
    assert ca(certs, "export", "--format", "der", "--out", str(tmp_path / "ca.der")) == 0
    assert x509.load_der_x509_certificate((tmp_path / "ca.der").read_bytes()) == cert
    assert ca(certs, "export", "--format", "p12", "--out", str(tmp_path / "ca.p12")) == 0
    bundle = pkcs12.load_pkcs12((tmp_path / "ca.p12").read_bytes(), None)
    assert bundle.key is None  # the key is never exported
    assert [c.certificate for c in bundle.additional_certs] == [cert]
    capsys.readouterr()
    assert ca(certs, "export") == 0
    out = capsys.readouterr().out
    assert load_pem_out(out) == cert and "PRIVATE" not in out


def load_pem_out(text: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(text.encode())


def test_rotate_prepares_then_promotes_with_both_trusted_in_between(tmp_path, capsys):
    certs = tmp_path / "certs"
    ca(certs, "init")
    first = load(certs / "ca.pem")
    assert ca(certs, "rotate", "--permit", "new.corp.example") == 0
    out = capsys.readouterr().out
    assert "ca-bundle.pem" in out and "--promote" in out
    nxt = load(certs / "next" / "ca.pem")
    assert load(certs / "ca.pem") == first  # the gateway still signs with the current CA
    bundle = x509.load_pem_x509_certificates((certs / "ca-bundle.pem").read_bytes())
    assert bundle == [first, nxt]
    assert ca(certs, "rotate") == 2  # one rotation at a time
    assert ca(certs, "rotate", "--promote") == 0
    assert load(certs / "ca.pem") == nxt
    assert x509.load_pem_x509_certificates((certs / "mitmproxy-ca.pem").read_bytes()) == [nxt]
    assert load(certs / "previous" / "ca.pem") == first
    assert mode(certs / "ca-key.pem") == 0o600 and mode(certs / "previous" / "ca-key.pem") == 0o600
    assert x509.load_pem_x509_certificates((certs / "ca-bundle.pem").read_bytes()) == [nxt, first]
    assert not (certs / "next").exists()
    # Leaves from the new CA verify for clients holding the bundle.
    limits = nameconstraints.of(nxt)
    assert limits is not None and "new.corp.example" in nameconstraints.permitted_dns(limits)


def _intermediate(root, root_key, permitted: list[str] | None):
    """An enterprise intermediate issued by ``root``."""
    inter, key = pki.create_ca("Enterprise Issuing CA", permitted=permitted)
    builder = (
        x509.CertificateBuilder()
        .subject_name(inter.subject)
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(inter.not_valid_before_utc)
        .not_valid_after(inter.not_valid_after_utc)
    )
    for ext in inter.extensions:
        if not isinstance(ext.value, x509.AuthorityKeyIdentifier):
            builder = builder.add_extension(ext.value, ext.critical)
    ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
    )
    return builder.sign(root_key, hashes.SHA256()), key


def test_bring_your_own_intermediate_chain_is_sent_to_clients(tmp_path):
    from mitmproxy.certs import CertStore
    from mitmproxy.net import tls as net_tls
    from OpenSSL import SSL

    root, root_key = pki.create_ca("Enterprise Root")
    inter, key = _intermediate(root, root_key, ["api.openai.com"])
    (tmp_path / "inter.pem").write_bytes(pki.certificate_pem(inter))
    (tmp_path / "inter-key.pem").write_bytes(pki.private_key_pem(key))
    (tmp_path / "root.pem").write_bytes(pki.certificate_pem(root))
    certs = tmp_path / "certs"
    args = ("--import", str(tmp_path / "inter.pem"), "--key", str(tmp_path / "inter-key.pem"))
    assert ca(certs, "init", *args, "--chain", str(tmp_path / "root.pem")) == 0
    assert mode(certs / "ca-key.pem") == 0o600

    # What mitmproxy does (tlsconfig.tls_start_client), with a client that trusts only the root.
    store = CertStore.from_store(certs, "mitmproxy", 2048)
    assert store.default_ca.fingerprint() == inter.fingerprint(hashes.SHA256())
    entry = store.get_cert("api.openai.com", [x509.DNSName("api.openai.com")])
    context = net_tls.create_client_proxy_context(
        method=net_tls.Method.TLS_SERVER_METHOD,
        min_version=net_tls.DEFAULT_MIN_VERSION,
        max_version=net_tls.DEFAULT_MAX_VERSION,
        cipher_list=None,
        ecdh_curve=None,
        chain_file=entry.chain_file,
        alpn_select_callback=None,
        request_client_cert=False,
        extra_chain_certs=(),
        dhparams=store.dhparams,
    )
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        raw, _ = listener.accept()
        conn = SSL.Connection(context, raw)
        conn.use_certificate(entry.cert.to_cryptography())
        conn.use_privatekey(entry.privatekey)
        conn.set_accept_state()
        try:
            conn.do_handshake()
            conn.sendall(b"ok")
        except SSL.Error:
            pass
        raw.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = ssl.create_default_context(cafile=str(tmp_path / "root.pem"))
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    try:
        with (
            socket.create_connection(listener.getsockname(), timeout=5) as raw,
            client.wrap_socket(raw, server_hostname="api.openai.com") as tls,
        ):
            # The client knows only the root: it verified because the gateway sent the
            # intermediate with the leaf.
            assert tls.recv(2) == b"ok"
    finally:
        thread.join(5)
        listener.close()


def test_import_refuses_a_key_that_does_not_match_or_a_non_ca(tmp_path, capsys):
    cert, _ = pki.create_ca("A")
    _, other_key = pki.create_ca("B")
    (tmp_path / "a.pem").write_bytes(pki.certificate_pem(cert))
    (tmp_path / "b-key.pem").write_bytes(pki.private_key_pem(other_key))
    args = ("--import", str(tmp_path / "a.pem"), "--key", str(tmp_path / "b-key.pem"))
    assert ca(tmp_path / "certs", "init", *args) == 2
    assert "does not belong" in capsys.readouterr().err
    leaf, leaf_key = pki.issue_certificate(cert, other_key, ["x.example"], [])
    (tmp_path / "leaf.pem").write_bytes(pki.certificate_pem(leaf))
    (tmp_path / "leaf-key.pem").write_bytes(pki.private_key_pem(leaf_key))
    args = ("--import", str(tmp_path / "leaf.pem"), "--key", str(tmp_path / "leaf-key.pem"))
    assert ca(tmp_path / "certs", "init", *args) == 2
    assert "not a CA certificate" in capsys.readouterr().err
    assert not (tmp_path / "certs" / "ca.pem").exists()


# --- tollhouse run refuses what weakens interception ----------------------------------------------


def run(tmp_path: Path, *args: str) -> int:
    base = ["run", "--rules", str(RULES), "--data", str(tmp_path / "data")]
    return main([*base, "--certs", str(tmp_path / "certs"), "--port", "0", *args])


def test_run_refuses_an_unconstrained_ca(tmp_path, capsys):
    from mitmproxy.certs import CertStore

    CertStore.create_store(tmp_path / "certs", "mitmproxy", 2048)  # an old deployment's CA
    assert run(tmp_path) == 2
    err = capsys.readouterr().err
    assert "no name constraints" in err and "--allow-unconstrained-ca" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "config",
    ["ssl_insecure: true\n", "ignore_hosts: ['api\\\\.openai\\\\.com']\n", "certs: ['x.pem']\n"],
)
def test_run_refuses_mitmproxy_options_that_weaken_interception(tmp_path, capsys, config):
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "config.yaml").write_text(config)
    assert run(tmp_path) == 2
    err = capsys.readouterr().err
    assert "config.yaml sets" in err and not (tmp_path / "certs" / "ca.pem").exists()


# --- tollhouse check --deployment -----------------------------------------------------------------


def check(tmp_path: Path, *args: str) -> int:
    base = ["check", "--deployment", "--rules", str(RULES), "--data", str(tmp_path / "data")]
    return main([*base, "--certs", str(tmp_path / "certs"), "--port", "0", *args])


def test_check_deployment_passes_on_a_fresh_ca(tmp_path, capsys):
    ca(tmp_path / "certs", "init")
    capsys.readouterr()
    assert check(tmp_path) == 0
    out = capsys.readouterr().out
    for line in ("ok     CA:", "ok     CA constraints:", "ok     data folder:", "ok     port:"):
        assert line in out


def test_check_deployment_reports_each_problem(tmp_path, capsys):
    certs = tmp_path / "certs"
    ca(certs, "init")
    os.chmod(certs / "ca-key.pem", 0o644)
    (tmp_path / "data").mkdir(mode=0o755)
    os.chmod(tmp_path / "data", 0o755)
    capsys.readouterr()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        code = check(tmp_path, "--port", port, "--state", "redis://127.0.0.1:1/0")
    out = capsys.readouterr().out
    assert code == 1
    assert "error  CA:" in out and "chmod 600" in out
    assert "error  data folder:" in out and "0755" in out
    assert "error  port:" in out
    assert "error  state:" in out and "127.0.0.1:1" in out


def test_check_deployment_warns_before_expiry_and_flags_an_unconstrained_ca(tmp_path, capsys):
    certs = tmp_path / "certs"
    certs.mkdir(mode=0o700)
    cert, key = pki.create_ca("Soon", days=10)
    (certs / "ca.pem").write_bytes(pki.certificate_pem(cert))
    fd = os.open(certs / "ca-key.pem", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, key.private_bytes(*_pem_pkcs8()))
    os.close(fd)
    assert check(tmp_path) == 1
    out = capsys.readouterr().out
    assert "warn   CA:" in out and "expires in" in out
    assert "error  CA constraints:" in out and "no name constraints" in out
    assert (cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)).days < 30


def _pem_pkcs8():
    return (
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_check_deployment_flags_catalog_hosts_the_ca_cannot_cover(tmp_path, capsys):
    import shutil

    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    ca(tmp_path / "certs", "init")
    text = (rules / "hosts.yaml").read_text()
    (rules / "hosts.yaml").write_text(
        text.replace("hosts: [api.x.ai]", "hosts: [api.x.ai, grok.x.ai]")
    )
    capsys.readouterr()
    args = [
        "--rules",
        str(rules),
        "--data",
        str(tmp_path / "d"),
        "--certs",
        str(tmp_path / "certs"),
    ]
    code = main(["check", "--deployment", *args, "--port", "0"])
    assert code == 1
    assert "grok.x.ai" in capsys.readouterr().out
