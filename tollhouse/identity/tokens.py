"""``Proxy-Authorization: Bearer <JWT>``: tokens verified against a JWKS file.

Checks the signature (with the key the token's ``kid`` names, by an algorithm the identity file
allows: never ``none`` or a shared secret), issuer, audience, expiry and not-before. Refusal
messages say what is wrong and never quote the token or its claims.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import jwt

from tollhouse.identity.config import JwtConfig
from tollhouse.identity.principal import AuthFailure, Principal, Source
from tollhouse.policyfile import PolicyError


class JwtVerifier:
    """Verifies proxy tokens against the keys of one JWKS file (loaded once)."""

    def __init__(self, config: JwtConfig, users: dict[str, str | None] | None = None) -> None:
        self.config = config
        self._users = users or {}
        try:
            data = json.loads(config.jwks.read_text(encoding="utf-8"))
            keyset = jwt.PyJWKSet.from_dict(data)
        except OSError as exc:
            raise PolicyError(
                config.jwks, None, "", f"cannot read: {exc.strerror or exc}"
            ) from None
        except (ValueError, jwt.exceptions.PyJWKSetError, jwt.exceptions.PyJWKError) as exc:
            raise PolicyError(config.jwks, None, "keys", f"not a usable JWKS: {exc}") from None
        self._keys: dict[str | None, Any] = {k.key_id: k for k in keyset.keys}

    def verify(self, token: str, now: float | None = None) -> Principal | AuthFailure:
        """The caller a token names, or why it was refused."""
        c = self.config
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.exceptions.InvalidTokenError, ValueError, TypeError):
            # Any attacker-shaped header (a non-text kid, a crit extension): a refusal, never
            # an exception, which would skip the identity stage for this request.
            return AuthFailure("bearer", "the proxy token is not a well-formed JWT")
        kid, alg = header.get("kid"), header.get("alg")
        if not isinstance(alg, str) or (kid is not None and not isinstance(kid, str)):
            return AuthFailure("bearer", "the proxy token is not a well-formed JWT")
        if kid is None and len(self._keys) == 1:
            key = next(iter(self._keys.values()))  # a one-key JWKS needs no kid
        else:
            key = self._keys.get(kid)
        if key is None:
            return AuthFailure("bearer", "the proxy token is signed by a key not in the JWKS (kid)")
        if alg not in c.algorithms:
            allowed = ", ".join(c.algorithms)
            return AuthFailure("bearer", f"the proxy token's algorithm is not one of {allowed}")
        try:
            claims = _decode(token, key.key, c, time.time() if now is None else now)
        except jwt.exceptions.ExpiredSignatureError:
            return AuthFailure("bearer", "the proxy token has expired (exp)")
        except jwt.exceptions.ImmatureSignatureError:
            return AuthFailure("bearer", "the proxy token is not valid yet (nbf)")
        except jwt.exceptions.InvalidIssuerError:
            return AuthFailure("bearer", "the proxy token's issuer (iss) is not the trusted one")
        except jwt.exceptions.InvalidAudienceError:
            return AuthFailure("bearer", "the proxy token's audience (aud) is not this gateway")
        except jwt.exceptions.InvalidSignatureError:
            return AuthFailure("bearer", "the proxy token's signature does not verify")
        except jwt.exceptions.MissingRequiredClaimError as exc:
            return AuthFailure("bearer", f"the proxy token has no {exc.claim!r} claim")
        except (jwt.exceptions.PyJWTError, ValueError, TypeError):
            return AuthFailure("bearer", "the proxy token is invalid")
        user = claims.get(c.user_claim)
        if not isinstance(user, str) or not user:
            return AuthFailure("bearer", f"the proxy token's {c.user_claim!r} claim is not text")
        team = claims.get(c.team_claim) if c.team_claim else None
        if isinstance(team, list):
            team = next((t for t in team if isinstance(t, str)), None)
        if not isinstance(team, str) or not team:
            team = self._users.get(user)
        return Principal(user, team, Source.JWT, expires_at=_time(claims["exp"]))


def _time(value: Any) -> float:
    """A NumericDate claim (``exp``, ``nbf``): a finite number of seconds, or ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("not a NumericDate")
    return float(value)


def _decode(token: str, key: Any, c: JwtConfig, now: float) -> dict[str, Any]:
    """Verify signature, issuer and audience (PyJWT), then expiry and not-before against ``now``
    (given, so that tests and long-lived connections can ask "is it still valid at t?")."""
    claims = jwt.decode(
        token,
        key,
        algorithms=list(c.algorithms),
        audience=c.audience,
        issuer=c.issuer,
        options={
            "require": ["exp", c.user_claim],
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
        },
    )
    if _time(claims["exp"]) <= now - c.leeway_seconds:
        raise jwt.exceptions.ExpiredSignatureError()
    if "nbf" in claims and _time(claims["nbf"]) > now + c.leeway_seconds:
        raise jwt.exceptions.ImmatureSignatureError()
    return claims
