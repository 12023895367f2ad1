"""Proxy authentication: one ``Proxy-Authorization`` value in, a principal or a refusal out.

Password hashes cost tens of milliseconds by design, so a verified header is remembered for a few
minutes (by a keyed hash of the header, never the header itself): a client that opens a tunnel per
request pays the hash once, not per tunnel. Refusals are not remembered, so a corrected password
works at once. Verified JWTs are remembered until they expire.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict

from tollhouse.identity.basic import Credentials, MalformedCredentials, parse_basic
from tollhouse.identity.principal import AuthFailure, Principal, Source
from tollhouse.identity.tokens import JwtVerifier

AuthResult = Principal | AuthFailure


class ProxyAuthenticator:
    """Checks ``Proxy-Authorization`` values against the credentials file and the JWKS."""

    def __init__(
        self,
        basic: Credentials | None,
        jwt: JwtVerifier | None,
        users: dict[str, str | None],
        *,
        ttl: float = 300.0,
        max_entries: int = 10_000,
    ) -> None:
        self.basic, self.jwt, self.users = basic, jwt, users
        self.ttl, self.max_entries = ttl, max_entries
        self._key = secrets.token_bytes(32)  # per process: cache keys mean nothing elsewhere
        self._cache: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()  # check() runs in worker threads

    @staticmethod
    def scheme(value: str) -> str:
        """``basic``, ``bearer`` or ``other``: the scheme of a header value."""
        name = value.strip().partition(" ")[0].lower()
        return name if name in ("basic", "bearer") else "other"

    def slow(self, value: str) -> bool:
        """Whether :meth:`check` may take long (a password hash): run it off the event loop."""
        return self.scheme(value) == "basic" and self.cached(value) is None

    def cached(self, value: str, now: float | None = None) -> Principal | None:
        """A principal verified recently for exactly this header value, else None."""
        now = time.time() if now is None else now
        digest = self._digest(value)
        with self._lock:
            hit = self._cache.get(digest)
            if hit is None:
                return None
            until, principal = hit
            if now >= until:
                del self._cache[digest]
                return None
            self._cache.move_to_end(digest)
            return principal

    def check(self, value: str, now: float | None = None) -> AuthResult:
        """Verify a ``Proxy-Authorization`` value. May take tens of milliseconds (Basic)."""
        now = time.time() if now is None else now
        if (principal := self.cached(value, now)) is not None:
            return principal
        result = self._verify(value, now)
        if isinstance(result, Principal):
            until = now + self.ttl
            if result.expires_at is not None:
                until = min(until, result.expires_at)
            with self._lock:
                self._cache[self._digest(value)] = (until, result)
                while len(self._cache) > self.max_entries:
                    self._cache.popitem(last=False)
        return result

    def _verify(self, value: str, now: float) -> AuthResult:
        scheme = self.scheme(value)
        if scheme == "basic":
            if self.basic is None:
                return AuthFailure("other", "this gateway does not accept Basic proxy credentials")
            try:
                user, password = parse_basic(value)
            except MalformedCredentials as exc:
                return AuthFailure("basic", f"proxy authentication failed: {exc}")
            if not self.basic.verify(user, password):
                # One message for an unknown user and a wrong password: no user enumeration.
                return AuthFailure("basic", "proxy authentication failed: wrong user or password")
            return Principal(user, self.users.get(user), Source.BASIC)
        if scheme == "bearer":
            if self.jwt is None:
                return AuthFailure("other", "this gateway does not accept Bearer proxy tokens")
            return self.jwt.verify(value.strip().partition(" ")[2].strip(), now)
        return AuthFailure("other", "unsupported proxy authentication scheme")

    def _digest(self, value: str) -> bytes:
        return hmac.new(self._key, value.strip().encode(), hashlib.sha256).digest()
