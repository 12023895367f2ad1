"""Identity test material made for real: RSA and EC keys, a JWKS file, signed JWTs, bcrypt and
argon2 password hashes, and an identities.yaml that uses them. Shared by the unit, addon and
end-to-end identity tests."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import argon2
import bcrypt
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

UNIT_SECRET = b"unit-test-fingerprint-secret"
ISSUER = "https://login.example.test/"
AUDIENCE = "tollhouse"
PASSWORDS = {"alice": "correct horse battery staple", "bob": "Tr0ub4dor&3", "carol": "s3cret-carol"}
ALICE_KEY = "sk-proj-alice-app-key-000000000000000000"  # registered to support-bot
BOB_KEY = "sk-proj-bob-personal-key-1111111111111111"  # nobody registered it


@dataclass
class Material:
    """Keys and files of one test set-up. Tokens are signed with the real private keys."""

    rules: Path
    rsa: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(65537, 2048))
    ec: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    stranger: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(65537, 2048)
    )

    def token(
        self, alg: str = "RS256", *, key: Any = None, kid: str | None = None, **claims: Any
    ) -> str:
        """A JWT for alice of team support, valid for 5 minutes, unless ``claims`` say otherwise."""
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "alice",
            "team": "support",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        signer = key or (self.rsa if alg.startswith("RS") else self.ec)
        return jwt.encode(body, signer, algorithm=alg, headers={"kid": kid or alg.lower()})


def bcrypt_hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


def argon2_hash(password: str) -> str:
    return argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(password)


IDENTITIES = """\
version: 1
mode: {mode}
proxy_auth:
  basic: {{credentials: credentials.txt}}
  jwt:
    jwks: jwks.json
    issuer: {issuer}
    audience: {audience}
    algorithms: [RS256, ES256]
    team_claim: team
policies: [standard, strict, monitor]
teams: [support, platform, research]
users:
  - {{id: alice, team: support}}
  - {{id: bob, team: research}}
  - {{id: carol, team: research}}
networks:
  - {{cidr: 10.50.8.0/24, name: build-farm, team: platform, mode: enforce}}
  - {{cidr: 10.60.0.0/16, mode: {other_mode}}}
applications:
  - {{name: support-bot, team: support, keys: [{alice_fp}]}}
  - {{name: notebook, team: research}}
bindings:
  - {{who: [team:support], apps: [support-bot], policy: standard}}
  - {{who: [user:carol], apps: [notebook], policy: strict}}
  - {{who: [device:build-farm], apps: ["*"], policy: strict}}
"""


def write_identities(
    rules: Path,
    secret: bytes,
    *,
    mode: str = "monitor",
    other_mode: str = "enforce",
) -> Material:
    """Write identities.yaml, credentials.txt (bcrypt for alice and carol, argon2 for bob) and
    jwks.json (one RSA, one EC key) into ``rules``."""
    from tollhouse.identity.keys import fingerprint

    rules.mkdir(parents=True, exist_ok=True)
    material = Material(rules)
    (rules / "identities.yaml").write_text(
        IDENTITIES.format(
            mode=mode,
            other_mode=other_mode,
            issuer=ISSUER,
            audience=AUDIENCE,
            alice_fp=fingerprint(secret, ALICE_KEY),
        )
    )
    (rules / "credentials.txt").write_text(
        "# user:hash\n"
        f"alice:{bcrypt_hash(PASSWORDS['alice'])}\n"
        f"bob:{argon2_hash(PASSWORDS['bob'])}\n"
        f"carol:{bcrypt_hash(PASSWORDS['carol'])}\n"
    )
    keys = []
    for kid, private in (("rs256", material.rsa), ("es256", material.ec)):
        jwk = json.loads(
            jwt.algorithms.get_default_algorithms()[kid.upper()].to_jwk(private.public_key())
        )
        keys.append({**jwk, "kid": kid, "use": "sig", "alg": kid.upper()})
    (rules / "jwks.json").write_text(json.dumps({"keys": keys}))
    return material


def basic(user: str, password: str | None = None) -> str:
    import base64

    pw = PASSWORDS[user] if password is None else password
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
