"""``Proxy-Authorization: Basic``: a credentials file of salted password hashes.

The file holds one ``user:hash`` per line (``#`` starts a comment); a hash is bcrypt (``$2b$``,
``$2a$``, ``$2y$``, e.g. from ``htpasswd -nB``) or argon2 (``$argon2id$``). Both are slow by design
(tens of milliseconds): callers verify off the event loop and cache the result. Unknown users are
checked against one of the file's own hashes (the result thrown away), so that the answer takes
as long as for a known user: same algorithm, same cost parameters, no timing oracle.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

import argon2
import bcrypt

from tollhouse.policyfile import PolicyError

_BCRYPT = ("$2a$", "$2b$", "$2y$")
_ARGON2 = ("$argon2id$", "$argon2i$", "$argon2d$")
# bcrypt hash of a random, forgotten password: the stand-in only for an empty credentials file.
_DUMMY = "$2b$12$TyZ6AOb3iHeNwdwPVjXbFukNf3iWyZbVD7scVvXKOvzqpMwW2SrLO"


class MalformedCredentials(ValueError):
    """The header is not ``Basic base64(user:password)``."""


def parse_basic(value: str) -> tuple[str, str]:
    """``Basic dXNlcjpwYXNz`` → ``("user", "pass")``. Raises :class:`MalformedCredentials`."""
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise MalformedCredentials("not Basic credentials")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise MalformedCredentials("Basic credentials are not base64 of user:password") from None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        raise MalformedCredentials("Basic credentials must be user:password")
    return user, password


class Credentials:
    """User → password hash, from a credentials file."""

    def __init__(self, hashes: dict[str, str]) -> None:
        self._hashes = hashes
        self._argon2 = argon2.PasswordHasher()
        # What an unknown user's password is checked against: the most common kind of hash in
        # the file (algorithm and cost), so unknown and known users cost the same work.
        kinds: dict[str, list[str]] = {}
        for hashed in hashes.values():
            kinds.setdefault(_parameters(hashed), []).append(hashed)
        self._dummy = max(kinds.values(), key=len)[0] if kinds else _DUMMY

    @classmethod
    def load(cls, path: Path) -> Credentials:
        """Read a credentials file. Raises :class:`PolicyError` naming the file and line."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(path, None, "", f"cannot read: {exc.strerror or exc}") from None
        hashes: dict[str, str] = {}
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            if not sep or not user or not hashed.startswith(_BCRYPT + _ARGON2):
                # Never quote the line: it may be a password someone pasted by mistake.
                raise PolicyError(
                    path, number, "", "expected user:hash with a bcrypt ($2b$) or argon2 hash"
                )
            if user in hashes:
                raise PolicyError(path, number, user, "user is listed twice")
            hashes[user] = hashed
        return cls(hashes)

    def verify(self, user: str, password: str) -> bool:
        """Whether ``password`` is ``user``'s. Slow by design (the hash's cost); constant-time
        comparison is the hash library's."""
        hashed = self._hashes.get(user)
        if hashed is None:
            self._check(self._dummy, password)  # same work as for a real user: no timing oracle
            return False
        return self._check(hashed, password)

    def _check(self, hashed: str, password: str) -> bool:
        if hashed.startswith(_ARGON2):
            try:
                return self._argon2.verify(hashed, password)
            except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
                return False
        return _bcrypt_check(password, hashed.encode())


def _parameters(hashed: str) -> str:
    """What sets a hash's cost: ``$2b$12`` (bcrypt), ``$argon2id$v=19$m=65536,t=3,p=4``."""
    parts = hashed.split("$")
    return "$".join(parts[:4] if hashed.startswith(_ARGON2) else parts[:3])


def _bcrypt_check(password: str, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password.encode(), hashed)
    except ValueError:  # bcrypt refuses passwords over 72 bytes and malformed hashes
        return False
