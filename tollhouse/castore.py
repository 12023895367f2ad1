"""The interception CA's life cycle in the certs folder: create, import, inspect, export, rotate.

Built on :mod:`tollhouse.pki` (file layout, creation, loading). Rotation has two steps, because
mitmproxy signs with one CA at a time and clients must trust the next CA before it signs:

1. ``rotate`` creates the next CA in ``certs/next/`` and writes ``certs/ca-bundle.pem`` (current
   and next). The gateway keeps signing with the current CA; operators distribute the bundle (or
   ``next/ca.pem``) to every client.
2. ``rotate --promote`` makes the next CA current (the gateway signs with it from its next start)
   and moves the old one to ``certs/previous/``. The bundle still holds both, so clients that
   have it trust the gateway before and after; the old CA can be removed from clients afterwards.

Nothing here imports mitmproxy.
"""

from __future__ import annotations

import datetime
import os
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from tollhouse import nameconstraints, pki

NEXT_DIR = "next"
PREVIOUS_DIR = "previous"
BUNDLE_FILE = "ca-bundle.pem"
_CA_FILES = (
    pki.CA_CERT_FILE,
    pki.CA_KEY_FILE,
    pki.MITMPROXY_CA_FILE,
    pki.MITMPROXY_CA_CERT_FILE,
    pki.CHAIN_FILE,
)


@dataclass
class CAInfo:
    """What ``ca show`` and ``check --deployment`` report about one CA folder."""

    path: Path
    cert: x509.Certificate
    permitted: list[str] | None  # None: no Name Constraints at all
    ips_excluded: bool
    key_mode: int | None
    key_encrypted: bool
    chain: list[x509.Certificate] = field(default_factory=list)

    @property
    def expires(self) -> datetime.datetime:
        return self.cert.not_valid_after_utc


def _has_ca(certs_dir: Path) -> bool:
    return any((certs_dir / name).exists() for name in _CA_FILES)


def init_ca(
    certs_dir: Path, permitted: Sequence[str], passphrase: bytes | None = None
) -> x509.Certificate:
    """Create a new name-constrained CA in ``certs_dir``; refuses to replace an existing one."""
    if _has_ca(certs_dir):
        raise pki.CAError(
            f"{certs_dir} already holds a CA; `tollhouse ca rotate` replaces it without "
            f"breaking clients"
        )
    ca_path = pki.ensure_interception_ca(certs_dir, permitted, passphrase)
    return x509.load_pem_x509_certificate(ca_path.read_bytes())


def import_ca(
    certs_dir: Path,
    cert_file: Path,
    key_file: Path,
    chain_file: Path | None = None,
    passphrase: bytes | None = None,
) -> x509.Certificate:
    """Install an enterprise CA or intermediate (its key, and its issuers to send to clients).

    The key is stored encrypted with ``passphrase`` if given (the same passphrase opens the source
    key if that is encrypted). Raises CAError if the certificate is not a usable CA, the key does
    not belong to it, or the chain does not lead up from it."""
    if _has_ca(certs_dir):
        raise pki.CAError(f"{certs_dir} already holds a CA; use `tollhouse ca rotate --import`")
    cert, key, chain = _load_import(cert_file, key_file, chain_file, passphrase)
    certs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if chain:
        pki._write_new(certs_dir / pki.CHAIN_FILE, b"".join(map(pki.certificate_pem, chain)), 0o644)
    pki._write_new(certs_dir / pki.CA_KEY_FILE, pki.private_key_pem(key, passphrase), 0o600)
    pki._write_new(certs_dir / pki.CA_CERT_FILE, pki.certificate_pem(cert), 0o644)
    pki.ensure_interception_ca(certs_dir, passphrase=passphrase)  # mitmproxy's files, checked
    return cert


def _load_import(
    cert_file: Path, key_file: Path, chain_file: Path | None, passphrase: bytes | None
) -> tuple[x509.Certificate, pki.PrivateKey, list[x509.Certificate]]:
    try:
        certs = x509.load_pem_x509_certificates(cert_file.read_bytes())
        chain = x509.load_pem_x509_certificates(chain_file.read_bytes()) if chain_file else []
    except ValueError:
        raise pki.CAError(f"{chain_file or cert_file}: no PEM certificate in this file") from None
    cert, chain = certs[0], certs[1:] + chain
    key = pki.load_key(key_file, passphrase)
    if cert.public_key() != key.public_key():
        raise pki.CAError(f"the private key in {key_file} does not belong to {cert_file}")
    if problem := signing_problem(cert):
        raise pki.CAError(f"{cert_file}: {problem}")
    for child, parent in zip([cert, *chain], chain, strict=False):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            raise pki.CAError(
                f"{chain_file or cert_file}: the chain is not in order: each certificate must be "
                f"issued by the next one"
            ) from None
    return cert, key, chain


def signing_problem(cert: x509.Certificate) -> str | None:
    """Why ``cert`` cannot sign the gateway's certificates, or None."""
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return "not a CA certificate (BasicConstraints and KeyUsage keyCertSign required)"
    if not bc.ca or not ku.key_cert_sign:
        return "not a CA certificate (BasicConstraints ca=TRUE and keyCertSign required)"
    if bc.path_length is not None and bc.path_length < 0:
        return "its path length does not allow issuing certificates"
    if cert.not_valid_after_utc <= datetime.datetime.now(datetime.UTC):
        return f"expired on {cert.not_valid_after_utc:%Y-%m-%d}"
    return None


def describe(certs_dir: Path) -> CAInfo:
    """The CA in ``certs_dir`` (without opening its key). Raises CAError if there is none."""
    ca_path = certs_dir / pki.CA_CERT_FILE
    if not ca_path.exists():
        raise pki.CAError(f"{ca_path} does not exist; create it with `tollhouse ca init`")
    try:
        cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
    except ValueError:
        raise pki.CAError(f"{ca_path} is not a PEM certificate") from None
    constraints = nameconstraints.of(cert)
    excluded = (constraints.excluded_subtrees or []) if constraints else []
    key_path = certs_dir / pki.CA_KEY_FILE
    key_mode = stat.S_IMODE(key_path.stat().st_mode) if key_path.exists() else None
    encrypted = key_path.exists() and b"ENCRYPTED" in key_path.read_bytes()[:64]
    chain_path = certs_dir / pki.CHAIN_FILE
    chain = x509.load_pem_x509_certificates(chain_path.read_bytes()) if chain_path.exists() else []
    return CAInfo(
        path=ca_path,
        cert=cert,
        permitted=nameconstraints.permitted_dns(constraints) if constraints else None,
        ips_excluded=all(
            any(isinstance(e, x509.IPAddress) and e.value == net for e in excluded)
            for net in nameconstraints.EXCLUDED_IPS
        ),
        key_mode=key_mode,
        key_encrypted=encrypted,
        chain=chain,
    )


def export(certs_dir: Path, fmt: str, passphrase: bytes | None = None) -> bytes:
    """The CA certificate as ``pem``, ``der`` or ``p12`` (PKCS#12 with the certificate only, for
    trust stores; with its chain for an imported intermediate). The key is never exported."""
    info = describe(certs_dir)
    if fmt == "pem":
        return b"".join(pki.certificate_pem(c) for c in [info.cert, *info.chain])
    if fmt == "der":
        return info.cert.public_bytes(serialization.Encoding.DER)
    if fmt == "p12":
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return pkcs12.serialize_key_and_certificates(
            b"Tollhouse Interception CA", None, None, [info.cert, *info.chain], encryption
        )
    raise ValueError(f"unknown format {fmt!r}: pem, der or p12")


def rotate(
    certs_dir: Path,
    permitted: Sequence[str],
    passphrase: bytes | None = None,
    imported: tuple[Path, Path, Path | None] | None = None,
) -> x509.Certificate:
    """Step 1: create the next CA in ``certs/next/`` and the bundle clients should trust."""
    describe(certs_dir)  # there is a current CA
    nxt = certs_dir / NEXT_DIR
    if _has_ca(nxt):
        raise pki.CAError(
            f"{nxt} already holds the next CA; promote it with `tollhouse ca rotate --promote` "
            f"(or remove {nxt} to start over)"
        )
    if imported:
        cert = import_ca(nxt, *imported, passphrase=passphrase)
    else:
        cert = init_ca(nxt, permitted, passphrase)
    _write_bundle(certs_dir, [certs_dir / pki.CA_CERT_FILE, nxt / pki.CA_CERT_FILE])
    return cert


def promote(certs_dir: Path) -> x509.Certificate:
    """Step 2: the next CA becomes current; the current one moves to ``certs/previous/``."""
    nxt, previous = certs_dir / NEXT_DIR, certs_dir / PREVIOUS_DIR
    if not (nxt / pki.CA_CERT_FILE).exists():
        raise pki.CAError(f"no next CA in {nxt}; run `tollhouse ca rotate` first")
    if previous.exists():
        shutil.rmtree(previous)  # the CA before the previous one: retired by the last promotion
    previous.mkdir(mode=0o700)
    for name in _CA_FILES:
        if (certs_dir / name).exists():
            os.replace(certs_dir / name, previous / name)
    for name in _CA_FILES:
        if (nxt / name).exists():
            os.replace(nxt / name, certs_dir / name)
    shutil.rmtree(nxt)
    _write_bundle(certs_dir, [certs_dir / pki.CA_CERT_FILE, previous / pki.CA_CERT_FILE])
    return x509.load_pem_x509_certificate((certs_dir / pki.CA_CERT_FILE).read_bytes())


def _write_bundle(certs_dir: Path, parts: Sequence[Path]) -> None:
    tmp = certs_dir / (BUNDLE_FILE + ".tmp")
    tmp.write_bytes(b"".join(p.read_bytes() for p in parts))
    os.chmod(tmp, 0o644)
    os.replace(tmp, certs_dir / BUNDLE_FILE)
