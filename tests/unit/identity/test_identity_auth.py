"""Proxy credentials: Basic against bcrypt and argon2 hashes, Bearer JWTs against a JWKS."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.unit.identity.idfixtures import PASSWORDS, basic
from tollhouse.identity import AuthFailure, Principal, Source


def test_basic_bcrypt_and_argon2_users_authenticate(identifier):
    alice = identifier.auth.check(basic("alice"))  # bcrypt
    bob = identifier.auth.check(basic("bob"))  # argon2id
    assert alice == Principal("alice", "support", Source.BASIC)
    assert bob == Principal("bob", "research", Source.BASIC)


@pytest.mark.parametrize(
    "header",
    [basic("alice", "wrong password"), basic("mallory", "anything"), basic("bob", "")],
    ids=["wrong-password", "unknown-user", "empty-password"],
)
def test_wrong_credentials_are_refused_without_saying_which_part(identifier, header):
    result = identifier.auth.check(header)
    assert result == AuthFailure("basic", "proxy authentication failed: wrong user or password")


@pytest.mark.parametrize("header", ["Basic !!!", "Basic " + "bm9jb2xvbg==", "Digest abc"])
def test_malformed_credentials_are_refused(identifier, header):
    result = identifier.auth.check(header)
    assert isinstance(result, AuthFailure)
    assert "!!!" not in result.message


def test_a_verified_password_is_cached_and_a_refused_one_never_passes(identifier):
    auth = identifier.auth
    header = basic("carol")
    assert auth.slow(header)
    assert auth.check(header).user_id == "carol"
    assert not auth.slow(header)
    started = time.perf_counter()
    assert auth.check(header).user_id == "carol"
    assert time.perf_counter() - started < 0.005  # no second hash
    bad = basic("carol", "nope")
    auth.check(bad)
    assert isinstance(auth.cached(bad), AuthFailure)  # remembered as a refusal, briefly


def test_cached_credentials_expire(identifier):
    header = basic("alice")
    identifier.auth.check(header)
    assert identifier.auth.cached(header, now=time.time() + 3600) is None


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_jwt_signed_by_the_identity_provider_is_accepted(identifier, material, alg):
    result = identifier.auth.check("Bearer " + material.token(alg, sub="dana", team="platform"))
    assert isinstance(result, Principal)
    assert (result.user_id, result.team, result.source) == ("dana", "platform", Source.JWT)
    assert result.expires_at is not None and result.expires_at > time.time()


def test_jwt_without_team_claim_takes_the_users_team(identifier, material):
    result = identifier.auth.check("Bearer " + material.token(sub="bob", team=None))
    assert isinstance(result, Principal) and result.team == "research"


def _refusal(identifier, token: str) -> str:
    result = identifier.auth.check("Bearer " + token)
    assert isinstance(result, AuthFailure), result
    assert token not in result.message and token[:20] not in result.message
    return result.message


def test_jwt_with_a_bad_signature_is_refused(identifier, material):
    forged = material.token(key=material.stranger)  # right kid, wrong private key
    assert _refusal(identifier, forged) == "the proxy token's signature does not verify"


def test_jwt_tampered_payload_is_refused(identifier, material):
    head, _, sig = material.token().split(".")
    other = material.token(sub="root").split(".")[1]
    assert "signature" in _refusal(identifier, f"{head}.{other}.{sig}")


@pytest.mark.parametrize(
    ("claims", "message"),
    [
        ({"exp": int(time.time()) - 3600}, "the proxy token has expired (exp)"),
        ({"nbf": int(time.time()) + 3600}, "the proxy token is not valid yet (nbf)"),
        ({"iss": "https://evil.example/"}, "the proxy token's issuer (iss) is not the trusted one"),
        ({"aud": "someone-else"}, "the proxy token's audience (aud) is not this gateway"),
        ({"exp": None}, "the proxy token has no 'exp' claim"),
    ],
    ids=["expired", "not-yet-valid", "wrong-issuer", "wrong-audience", "no-expiry"],
)
def test_jwt_claim_failures_name_what_is_wrong(identifier, material, claims, message):
    for alg in ("RS256", "ES256"):
        assert _refusal(identifier, material.token(alg, **claims)) == message


def test_jwt_from_an_unknown_key_or_algorithm_is_refused(identifier, material):
    assert "not in the JWKS" in _refusal(identifier, material.token(kid="rotated-away"))
    hs = jwt.encode({"sub": "alice"}, "a-shared-secret-of-32-bytes-or-more!", "HS256",
                    headers={"kid": "rs256"})  # fmt: skip
    assert "algorithm" in _refusal(identifier, hs)
    unsigned = jwt.encode({"sub": "alice"}, None, "none", headers={"kid": "rs256"})
    assert "algorithm" in _refusal(identifier, unsigned)
    assert "well-formed" in _refusal(identifier, "not-a-jwt")


def test_expired_token_is_not_cached_past_its_expiry(identifier, material):
    token = material.token(exp=int(time.time()) + 2)
    assert isinstance(identifier.auth.check("Bearer " + token), Principal)
    assert identifier.auth.cached("Bearer " + token, now=time.time() + 5) is None


def test_passwords_never_appear_in_refusals(identifier):
    for user, password in PASSWORDS.items():
        result = identifier.auth.check(basic(user, password + "x"))
        assert isinstance(result, AuthFailure) and password not in result.message
