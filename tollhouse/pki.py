"""Certificates: the gateway's interception CA and the server certificates it issues.

The interception CA is what clients trust so that the gateway can decrypt TLS to AI hosts. It lives
in the certs directory, which is also mitmproxy's ``confdir``:

``ca.pem``
    the CA certificate only: what clients and operating systems install and trust.
``ca-key.pem``
    the CA private key (mode 0600).
``mitmproxy-ca.pem``
    key and certificate concatenated (mode 0600): the file mitmproxy loads from its confdir.
``mitmproxy-ca-cert.pem``
    the certificate again, under the name mitmproxy's own tooling looks for.
``ca-chain.pem``
    only for an imported enterprise intermediate: its issuing certificates. They follow the CA in
    ``mitmproxy-ca.pem``, and mitmproxy sends them to clients with every leaf.

A CA created here carries critical X.509 Name Constraints (:mod:`tollhouse.nameconstraints`):
it can vouch only for the catalog's AI domains and the names the operator adds, never for an IP
address, so a stolen key cannot impersonate a bank. A CA that already exists is reused as it is
(``tollhouse run`` then refuses one without constraints unless told otherwise).

The CA is RSA 2048, because mitmproxy signs its leaf certificates with the CA's own key and RSA is
the type every client accepts. Certificates carry Subject and Authority Key Identifiers, which
OpenSSL 3 clients in strict mode (Python 3.13's default ``VERIFY_X509_STRICT``) require.

Nothing here imports mitmproxy; nothing happens at import time.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tollhouse import nameconstraints

logger = logging.getLogger(__name__)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

INTERCEPTION_CA_NAME = "Tollhouse Interception CA"
CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
MITMPROXY_CA_FILE = "mitmproxy-ca.pem"  # key + cert, what mitmproxy loads from its confdir
MITMPROXY_CA_CERT_FILE = "mitmproxy-ca-cert.pem"
CHAIN_FILE = "ca-chain.pem"  # an imported intermediate's issuers, sent to clients after it

_BACKDATE = datetime.timedelta(days=1)  # tolerate clients whose clock runs a little behind


class CAError(RuntimeError):
    """The certs directory holds something the gateway must not use or overwrite. The message
    names the file and says what to do."""


class UnsafeKeyFileError(CAError, PermissionError):
    """A file holding the CA private key is readable by group or others."""


def create_ca(
    common_name: str, days: int = 3650, permitted: Sequence[str] | None = None
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A new self-signed CA (RSA 2048, SHA-256) valid for ``days`` days.

    Extensions: BasicConstraints ca=True (critical), KeyUsage keyCertSign + cRLSign (critical),
    Subject Key Identifier and a matching Authority Key Identifier; with ``permitted`` (DNS
    subtrees), Name Constraints (critical) permitting only those and excluding every IP address.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Tollhouse"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
    )
    if permitted is not None:
        # Critical: a client that cannot enforce the constraints must reject the CA, not ignore
        # them (RFC 5280 4.2.1.10).
        builder = builder.add_extension(nameconstraints.build(permitted), critical=True)
    return builder.sign(key, hashes.SHA256()), key


def issue_certificate(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    hostnames: list[str],
    ips: list[str],
    days: int = 825,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A TLS server certificate signed by the CA, with a new EC P-256 key.

    ``hostnames`` become DNS names in the Subject Alternative Name (wildcards such as
    ``*.openai.azure.com`` are allowed as a whole left-most label), ``ips`` become IP addresses.
    The first hostname (or IP) is also the subject's common name. 825 days is the longest validity
    Apple platforms accept for a server certificate. Raises ValueError if no name is given or an IP
    is malformed.
    """
    if not hostnames and not ips:
        raise ValueError("a server certificate needs at least one hostname or IP address")
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    common_name = (hostnames or ips)[0]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_identifier(ca_cert), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def certificate_pem(cert: x509.Certificate) -> bytes:
    """The certificate in PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    """The private key in PKCS#8 PEM, encrypted with ``passphrase`` if given. Write it only to a
    0600 file."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint as colon-separated upper-case hex, as browsers and openssl show it."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def ensure_interception_ca(
    certs_dir: Path, permitted: Sequence[str] | None = None, passphrase: bytes | None = None
) -> Path:
    """Make sure ``certs_dir`` holds the interception CA and return the path of ``ca.pem``.

    On first use this creates the directory (mode 0700) and a new "Tollhouse Interception CA",
    name-constrained to ``permitted`` when given (its key encrypted with ``passphrase``), and
    writes ``ca.pem``, ``ca-key.pem`` (0600), ``mitmproxy-ca.pem`` (0600) and
    ``mitmproxy-ca-cert.pem``. Later calls reuse what is there and never overwrite a CA: missing
    mitmproxy files are derived from ``ca.pem`` + ``ca-key.pem``, and a directory that holds only
    mitmproxy's own ``mitmproxy-ca.pem`` is adopted as is.

    Raises :class:`UnsafeKeyFileError` if a key file is readable by group or others, and
    :class:`CAError` if the files are incomplete or disagree (a key without its certificate, a
    certificate that does not match its key, a mitmproxy CA different from ``ca.pem``).
    """
    certs_dir = Path(certs_dir)
    if not certs_dir.exists():
        certs_dir.mkdir(mode=0o700, parents=True)
    ca_path = certs_dir / CA_CERT_FILE
    key_path = certs_dir / CA_KEY_FILE
    mitm_path = certs_dir / MITMPROXY_CA_FILE
    mitm_cert_path = certs_dir / MITMPROXY_CA_CERT_FILE

    for path in (key_path, mitm_path):
        if path.exists():
            _check_private(path)

    if ca_path.exists() or key_path.exists():
        cert, key = _load_pair(ca_path, key_path, passphrase)
        if mitm_path.exists():
            mitm_cert, _ = _load_combined(mitm_path, passphrase)
            if mitm_cert.fingerprint(hashes.SHA256()) != cert.fingerprint(hashes.SHA256()):
                raise CAError(
                    f"{mitm_path} holds a different CA than {ca_path}: clients would trust one "
                    f"CA while the gateway signs with another. Remove {mitm_path} to have it "
                    f"rebuilt from {ca_path} and {key_path}."
                )
    elif mitm_path.exists():
        cert, key = _load_combined(mitm_path, passphrase)
        logger.info("adopting the existing mitmproxy CA in %s (%s)", mitm_path, fingerprint(cert))
    else:
        cert, key = create_ca(INTERCEPTION_CA_NAME, permitted=permitted)
        logger.info("created the interception CA %s (%s)", ca_path, fingerprint(cert))

    # Key-bearing files first, ca.pem last: ca.pem appearing means the CA is complete.
    if not key_path.exists():
        _write_new(key_path, private_key_pem(key, passphrase), 0o600)
    if not mitm_path.exists():
        chain = certs_dir / CHAIN_FILE
        issuers = chain.read_bytes() if chain.exists() else b""
        combined = private_key_pem(key, passphrase) + certificate_pem(cert) + issuers
        _write_new(mitm_path, combined, 0o600)
    if not mitm_cert_path.exists():
        _write_new(mitm_cert_path, certificate_pem(cert), 0o644)
    if not ca_path.exists():
        _write_new(ca_path, certificate_pem(cert), 0o644)
    return ca_path


def _authority_key_identifier(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _check_private(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise UnsafeKeyFileError(
            f"{path} holds the CA private key but has mode {mode:04o}, readable by others; "
            f"run `chmod 600 {path}` (and check who may have read it)"
        )


def _load_pair(
    ca_path: Path, key_path: Path, passphrase: bytes | None = None
) -> tuple[x509.Certificate, PrivateKey]:
    for path, other in ((ca_path, key_path), (key_path, ca_path)):
        if not path.exists():
            raise CAError(
                f"{other} exists but {path} does not; restore {path}, or remove {other} "
                f"to have a new CA created (clients then have to trust the new one)"
            )
    try:
        cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    except ValueError as e:
        raise CAError(f"{ca_path} is not a PEM certificate: {e}") from e
    key = load_key(key_path, passphrase)
    _check_match(cert, key, key_path)
    return cert, key


def _load_combined(
    path: Path, passphrase: bytes | None = None
) -> tuple[x509.Certificate, PrivateKey]:
    raw = path.read_bytes()
    try:
        cert = x509.load_pem_x509_certificates(raw)[0]
    except ValueError as e:
        raise CAError(f"{path} holds no PEM certificate: {e}") from e
    key = load_key(path, passphrase)
    _check_match(cert, key, path)
    return cert, key


def load_key(path: Path, passphrase: bytes | None = None) -> PrivateKey:
    """The PEM private key in ``path`` (decrypted with ``passphrase``); raises CAError."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except TypeError:
        # Encrypted without a passphrase given, or a passphrase for an unencrypted key.
        need = "no passphrase" if passphrase else "a passphrase (--passphrase-env VAR)"
        raise CAError(f"{path}: the CA key needs {need}") from None
    except ValueError:
        # cryptography's message could say more than a log line should; name the file only.
        raise CAError(f"{path} holds no PEM private key this passphrase opens") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CAError(f"{path}: the CA key must be RSA or EC, not {type(key).__name__}")
    return key


def _check_match(cert: x509.Certificate, key: PrivateKey, key_path: Path) -> None:
    if cert.public_key() != key.public_key():
        raise CAError(f"the private key in {key_path} does not belong to the CA certificate")


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write a file that must not exist yet, with ``mode`` from the first byte on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
