"""Who a caller is, once a source has said so: the values every identity source produces."""

from __future__ import annotations

from dataclasses import dataclass


class Source:
    """Where an identity or an application came from (the audit's ``identity_source``)."""

    BASIC = "basic"  # Proxy-Authorization: Basic, checked against the credentials file
    JWT = "jwt"  # Proxy-Authorization: Bearer JWT, checked against the JWKS file
    NETWORK = "network"  # the client address lies in a named range (a device or site)
    KEY = "key"  # the provider API key's fingerprint is registered to the application
    HEADER = "header"  # the application header named a known application


@dataclass(frozen=True, slots=True)
class Principal:
    """A person or machine the gateway has identified."""

    user_id: str
    team: str | None
    source: str
    expires_at: float | None = None  # a JWT's expiry: past it, the identity no longer holds

    def valid_at(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """Proxy credentials that were presented and refused. ``message`` names what is wrong and
    never contains the credentials."""

    scheme: str  # "basic" or "bearer" (the challenge to send back), or "other"
    message: str
