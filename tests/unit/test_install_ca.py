"""scripts/install-ca: what it would do (dry run) on each platform, and what it does on Debian,
against a stand-in root folder (TOLLHOUSE_TRUST_ROOT) so the real trust store is never touched."""

from __future__ import annotations

import datetime
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install-ca"
VARIABLES = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "AWS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
]


def make_ca(name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def ca(tmp_path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_bytes(make_ca("Tollhouse test CA"))
    return path


def install(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    environ = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(home), **env}
    return subprocess.run(
        ["sh", str(SCRIPT), *args], capture_output=True, text=True, env=environ, timeout=120
    )


def exported(stdout: str) -> dict[str, str]:
    lines = [line.removeprefix("export ").split("=", 1) for line in stdout.splitlines()]
    return {key: value.strip("'") for key, value in lines}


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    "platform, expected",
    [
        ("debian", ["/usr/local/share/ca-certificates/tollhouse-", "update-ca-certificates"]),
        ("rhel", ["/etc/pki/ca-trust/source/anchors/tollhouse-", "update-ca-trust extract"]),
        ("macos", ["security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System"]),
    ],
)
def test_a_dry_run_prints_each_step_and_changes_nothing(tmp_path, ca, platform, expected):
    result = install(tmp_path, "--dry-run", str(ca), TOLLHOUSE_PLATFORM=platform)
    assert result.returncode == 0, result.stderr
    for step in expected:
        assert step in result.stderr
    if shutil.which("certutil"):
        assert "certutil -A -d sql:" + str(tmp_path / "home/.pki/nssdb") in result.stderr
    assert "dry run: nothing was changed" in result.stderr
    env = exported(result.stdout)
    assert list(env) == VARIABLES
    bundle = str(tmp_path / "home/.local/share/tollhouse/trust-bundle.pem")
    assert {env[v] for v in VARIABLES[:4]} == {bundle}
    assert env["NODE_EXTRA_CA_CERTS"] == str(ca)  # added to Node's roots, not replacing them
    assert files_under(tmp_path / "home") == []


def test_each_certificate_of_a_rotation_bundle_is_installed_under_its_own_name(tmp_path):
    both = tmp_path / "rotation.pem"
    both.write_bytes(make_ca("current") + make_ca("next"))
    result = install(tmp_path, "--dry-run", "--system", str(both), TOLLHOUSE_PLATFORM="rhel")
    names = {
        line.rsplit("/", 1)[1]
        for line in result.stderr.splitlines()
        if "anchors/tollhouse-" in line
    }
    assert len(names) == 2


@pytest.mark.parametrize("content", [None, b"not a certificate\n"])
def test_a_missing_or_malformed_ca_file_is_refused(tmp_path, content):
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_bytes(content)
    result = install(tmp_path, "--dry-run", str(path))
    assert result.returncode == 1
    assert str(path) in result.stderr


def test_an_unknown_platform_is_refused_for_the_system_store(tmp_path, ca):
    result = install(tmp_path, "--system", str(ca), TOLLHOUSE_PLATFORM="plan9")
    assert result.returncode == 1
    assert "no known trust store" in result.stderr


@pytest.mark.skipif(
    not shutil.which("update-ca-certificates") or not Path("/etc/ca-certificates.conf").exists(),
    reason="Debian's ca-certificates is not installed",
)
def test_on_debian_the_ca_lands_in_the_trust_store_nss_and_a_combined_bundle(tmp_path, ca):
    root = tmp_path / "root"  # stands in for /: update-ca-certificates writes only under it
    (root / "etc/ssl/certs").mkdir(parents=True)
    (root / "etc/ca-certificates/update.d").mkdir(parents=True)
    # Five of the system's roots are enough, and keep update-ca-certificates quick.
    lines = Path("/etc/ca-certificates.conf").read_text().splitlines()
    roots = [line for line in lines if line.endswith(".crt") and not line.startswith("!")][:5]
    (root / "etc/ca-certificates.conf").write_text("\n".join(roots) + "\n")
    env = {"TOLLHOUSE_TRUST_ROOT": str(root), "TOLLHOUSE_PLATFORM": "debian"}
    for _ in range(2):  # a second run replaces rather than duplicates
        result = install(tmp_path, str(ca), **env)
        assert result.returncode == 0, result.stderr
    installed = list((root / "usr/local/share/ca-certificates").iterdir())
    assert len(installed) == 1 and installed[0].read_bytes() == ca.read_bytes()
    system = root / "etc/ssl/certs/ca-certificates.crt"
    ssl.create_default_context(cafile=str(system))  # a loadable PEM bundle
    assert ca.read_text().strip() in system.read_text()
    # The combined bundle: every system root plus ours, so SSL_CERT_FILE loses nothing.
    bundle = Path(exported(result.stdout)["SSL_CERT_FILE"])
    text = bundle.read_text()
    assert system.read_text().count("BEGIN CERTIFICATE") == len(roots) + 1
    assert text.count("BEGIN CERTIFICATE") == len(roots) + 1  # ours once
    context = ssl.create_default_context(cafile=str(bundle))
    assert len(context.get_ca_certs()) == len(roots) + 1
    if shutil.which("certutil"):
        nss = subprocess.run(
            ["certutil", "-L", "-d", f"sql:{tmp_path / 'home/.pki/nssdb'}"],
            capture_output=True,
            text=True,
            check=True,
        )
        trusted = [line.split() for line in nss.stdout.splitlines() if "tollhouse-" in line]
        assert len(trusted) == 1 and trusted[0][1] == "C,,"
