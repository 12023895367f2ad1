"""Provider API keys: where each provider carries one, and its fingerprint.

A fingerprint is a keyed hash (HMAC-SHA256, truncated to 16 hex digits) so that the audit log and
the identity file can name a key without holding it, and a leaked audit log cannot be used to test
guesses of a key without the gateway's secret. The secret comes from ``TOLLHOUSE_FINGERPRINT_KEY``
or from ``<data>/fingerprint.key`` (created with mode 0600 on first use): keep it stable, or every
registered fingerprint changes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

ENV = "TOLLHOUSE_FINGERPRINT_KEY"
SECRET_NAME = "fingerprint.key"  # noqa: S105 - a file name
LENGTH = 16  # hex digits: 64 bits, plenty to tell an organization's keys apart

# Header → how its value carries the key. Order: the provider-specific headers first.
_HEADERS = ("x-api-key", "api-key", "x-goog-api-key")
_SIGV4_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]{16,128})/")


def load_secret(data_dir: Path | str, environ: Mapping[str, str] | None = None) -> bytes:
    """The fingerprint secret: the environment variable, else the data folder's secret file,
    created (32 random bytes, mode 0600) if it does not exist yet."""
    env = os.environ if environ is None else environ
    if value := env.get(ENV):
        return value.encode()
    path = Path(data_dir) / SECRET_NAME
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it in between: use theirs
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as out:
        out.write(secret.hex() + "\n")
    return secret


def fingerprint(secret: bytes, key: str) -> str:
    """The keyed fingerprint of a provider API key."""
    return hmac.new(secret, key.strip().encode(), hashlib.sha256).hexdigest()[:LENGTH]


def find_key(headers: Mapping[str, str], url: str) -> str | None:
    """The provider API key of a request, wherever the provider puts it: ``x-api-key``
    (Anthropic), ``api-key`` (Azure), ``x-goog-api-key`` or ``?key=`` (Gemini),
    ``Authorization: Bearer`` (OpenAI and most others), or the access key id of an AWS SigV4
    signature (Bedrock). ``headers`` must have lower-case names."""
    for name in _HEADERS:
        if value := headers.get(name, "").strip():
            return value
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme == "AWS4-HMAC-SHA256" and (m := _SIGV4_CREDENTIAL.search(value)):
        return m.group(1)
    query = urlsplit(url).query
    if "key=" in query:
        for name, value in parse_qsl(query):
            if name == "key" and value:
                return value
    return None
