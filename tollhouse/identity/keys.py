"""Provider API keys: where each provider carries one, and its fingerprint.

A fingerprint is a keyed hash (HMAC-SHA256, truncated to 16 hex digits) so that the audit log and
the identity file can name a key without holding it, and a leaked audit log cannot be used to test
guesses of a key without the gateway's secret. The secret comes from ``TOLLHOUSE_FINGERPRINT_KEY``
or from ``<data>/fingerprint.key`` (created with mode 0600 on first use): keep it stable, or every
registered fingerprint changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from tollhouse.policyfile import PolicyError

log = logging.getLogger("tollhouse.identify")

ENV = "TOLLHOUSE_FINGERPRINT_KEY"
SECRET_NAME = "fingerprint.key"  # noqa: S105 - a file name
LENGTH = 16  # hex digits: 64 bits, plenty to tell an organization's keys apart

# Header → how its value carries the key. Order: the provider-specific headers first.
_HEADERS = ("x-api-key", "api-key", "x-goog-api-key")
_SIGV4_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]{16,128})/")


def load_secret(data_dir: Path | str, environ: Mapping[str, str] | None = None) -> bytes:
    """The fingerprint secret: the environment variable, else the data folder's secret file,
    created (32 random bytes, mode 0600) if it does not exist yet. The file is published
    complete in one step, so gateways starting together agree on one secret. Raises
    :class:`~tollhouse.policyfile.PolicyError` for a file that holds no usable secret."""
    env = os.environ if environ is None else environ
    if value := env.get(ENV):
        return value.encode()
    path = Path(data_dir) / SECRET_NAME
    if not path.exists():
        _create(path)
    return _read(path)


def _read(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
        secret = bytes.fromhex(text)
    except OSError as exc:
        raise PolicyError(path, None, "", f"cannot read: {exc.strerror or exc}") from None
    except ValueError:
        secret = b""
    if len(secret) < 16:
        # Never fall back to a weak or empty key: every fingerprint would change and be
        # guessable. The file's content is not quoted: it is a secret.
        raise PolicyError(
            path,
            None,
            "",
            f"not a fingerprint secret (expected {2 * 32} hex digits); "
            f"restore it from backup, or set {ENV}",
        )
    if path.stat().st_mode & 0o077:
        log.warning("%s can be read by other users: chmod 600 it", path)
    return secret


def _create(path: Path) -> None:
    """Write a new secret to a private temporary file, then link it into place: the name
    appears with its whole content or not at all; if another process won, its secret stays."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{SECRET_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, (secrets.token_bytes(32).hex() + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # another gateway won the race: use theirs
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def fingerprint(secret: bytes, key: str) -> str:
    """The keyed fingerprint of a provider API key."""
    return hmac.new(secret, key.strip().encode(), hashlib.sha256).hexdigest()[:LENGTH]


def find_key(headers: Mapping[str, str], url: str) -> str | None:
    """The provider API key of a request, wherever the provider puts it (see :func:`find_keys`);
    the first one when there are several."""
    found = find_keys(headers, url)
    return found[0] if found else None


def find_keys(headers: Mapping[str, str], url: str) -> list[str]:
    """Every distinct provider API key a request carries, wherever providers put them:
    ``x-api-key`` (Anthropic), ``api-key`` (Azure), ``x-goog-api-key`` or ``?key=`` (Gemini),
    ``Authorization: Bearer`` (OpenAI and most others), or the access key id of an AWS SigV4
    signature (Bedrock). ``headers`` must have lower-case names. More than one is suspicious:
    which one the provider uses cannot be told from here."""
    found: list[str] = []
    for name in _HEADERS:
        if value := headers.get(name, "").strip():
            found.append(value)
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        found.append(value.strip())
    elif scheme == "AWS4-HMAC-SHA256" and (m := _SIGV4_CREDENTIAL.search(value)):
        found.append(m.group(1))
    query = urlsplit(url).query
    if "key=" in query:
        found += [value for name, value in parse_qsl(query) if name == "key" and value]
    return list(dict.fromkeys(found))
