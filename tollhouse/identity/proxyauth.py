"""Proxy authentication: one ``Proxy-Authorization`` value in, a principal or a refusal out.

Password hashes cost tens of milliseconds by design, so a verified header is remembered for a few
minutes (by a keyed hash of the header, never the header itself): a client that opens a tunnel per
request pays the hash once, not per tunnel. A refused header is remembered for half a minute, so a
client retrying a stale password on every connection costs one hash, not one per attempt; a
corrected password is another header and is checked at once. Verified JWTs are remembered until
they expire. Both memories are bounded, and refusals cannot push out verified callers.

Hashes are checked on the authenticator's own few threads, and only so many may wait: a flood of
made-up passwords slows proxy authentication down, never the stages that share Python's default
thread pool (budgets, large scans), and never callers already remembered.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from tollhouse.identity.basic import Credentials, MalformedCredentials, parse_basic
from tollhouse.identity.principal import AuthFailure, Principal, Source
from tollhouse.identity.tokens import JwtVerifier

AuthResult = Principal | AuthFailure
BUSY = AuthFailure("basic", "proxy authentication is overloaded; try again shortly")


class _Memory:
    """Header digest → (until, result): least recently used first, at most ``size`` entries."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: OrderedDict[bytes, tuple[float, AuthResult]] = OrderedDict()

    def get(self, digest: bytes, now: float) -> AuthResult | None:
        hit = self.entries.get(digest)
        if hit is None:
            return None
        if now >= hit[0]:
            del self.entries[digest]
            return None
        self.entries.move_to_end(digest)
        return hit[1]

    def put(self, digest: bytes, until: float, result: AuthResult) -> None:
        self.entries[digest] = (until, result)
        self.entries.move_to_end(digest)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self.entries)


class ProxyAuthenticator:
    """Checks ``Proxy-Authorization`` values against the credentials file and the JWKS."""

    def __init__(
        self,
        basic: Credentials | None,
        jwt: JwtVerifier | None,
        users: dict[str, str | None],
        *,
        ttl: float = 300.0,
        refused_ttl: float = 30.0,
        max_entries: int = 10_000,
        workers: int = 2,
        max_waiting: int = 256,
    ) -> None:
        self.basic, self.jwt, self.users = basic, jwt, users
        self.ttl, self.refused_ttl = ttl, refused_ttl
        self.workers, self.max_waiting = workers, max_waiting
        self._key = secrets.token_bytes(32)  # per process: cache keys mean nothing elsewhere
        self._cache = _Memory(max_entries)
        self._refused = _Memory(max_entries)
        self._lock = threading.Lock()  # check() runs in worker threads
        self._executor: ThreadPoolExecutor | None = None
        self._waiting = 0  # hash checks queued or running (event loop only)

    @staticmethod
    def scheme(value: str) -> str:
        """``basic``, ``bearer`` or ``other``: the scheme of a header value."""
        name = value.strip().partition(" ")[0].lower()
        return name if name in ("basic", "bearer") else "other"

    def slow(self, value: str) -> bool:
        """Whether :meth:`check` may take long (a password hash): run it off the event loop."""
        return self.scheme(value) == "basic" and self.cached(value) is None

    def cached(self, value: str, now: float | None = None) -> AuthResult | None:
        """What this exact header value got recently (a principal or a refusal), else None."""
        now = time.time() if now is None else now
        digest = self._digest(value)
        with self._lock:
            return self._cache.get(digest, now) or self._refused.get(digest, now)

    def check(self, value: str, now: float | None = None) -> AuthResult:
        """Verify a ``Proxy-Authorization`` value. May take tens of milliseconds (Basic)."""
        now = time.time() if now is None else now
        if (hit := self.cached(value, now)) is not None:
            return hit
        result = self._verify(value, now)
        digest = self._digest(value)
        with self._lock:
            if isinstance(result, Principal):
                until = now + self.ttl
                if result.expires_at is not None:
                    until = min(until, result.expires_at)
                self._cache.put(digest, until, result)
            elif result.scheme == "basic":  # a wrong password: hashing it again tells nothing new
                self._refused.put(digest, now + self.refused_ttl, result)
        return result

    async def check_async(self, value: str) -> AuthResult:
        """:meth:`check` for the event loop: a remembered answer at once, a password hash on the
        authenticator's own threads, and a refusal when too many hashes are already waiting."""
        if (hit := self.cached(value)) is not None:
            return hit
        if not self.slow(value):
            return self.check(value)
        if self._waiting >= self.max_waiting:
            return BUSY
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="tollhouse-auth")
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, self.check, value
            )
        finally:
            self._waiting -= 1

    def close(self) -> None:
        """Let the hashing threads go (a reloaded identity file makes a new authenticator)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

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
