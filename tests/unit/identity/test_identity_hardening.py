"""Attacks on the identity engine: hostile tokens, timing oracles, inherited range modes, a
half-written fingerprint secret, and callers that spam bad passwords."""

from __future__ import annotations

import base64
import json
import os
import threading
import time

import argon2
import bcrypt
import pytest

from tests.unit.identity.idfixtures import basic, bcrypt_hash
from tollhouse.identity import AuthFailure, Identifier, Mode, keys
from tollhouse.identity.basic import Credentials
from tollhouse.identity.config import load_identities
from tollhouse.policyfile import PolicyError


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "RS256", "kid": ["rs256"]},  # unhashable kid
        {"alg": "RS256", "kid": {"a": 1}},
        {"alg": ["RS256"], "kid": "rs256"},
        {"alg": "RS256", "kid": "rs256", "crit": ["exp"]},
    ],
    ids=["kid-list", "kid-dict", "alg-list", "crit"],
)
def test_a_hostile_token_header_is_a_refusal_not_an_exception(identifier, header):
    token = f"{_b64(header)}.{_b64({'sub': 'alice'})}.c2ln"
    result = identifier.auth.check("Bearer " + token)
    assert isinstance(result, AuthFailure) and result.scheme == "bearer"


@pytest.mark.parametrize("exp", ["inf", "NaN", True, "1e999"])
def test_a_signed_token_with_a_non_numeric_expiry_is_refused(identifier, material, exp):
    result = identifier.auth.check("Bearer " + material.token(exp=exp))
    assert isinstance(result, AuthFailure), result


def test_an_unknown_user_costs_the_same_hash_work_as_a_known_one(tmp_path, monkeypatch):
    # htpasswd -nB uses cost 5; a fixed cost-12 dummy made unknown users 100x slower than known
    # ones: a user-enumeration oracle. The dummy must have the file's own parameters.
    path = tmp_path / "credentials.txt"
    path.write_text(f"alice:{bcrypt.hashpw(b'pw', bcrypt.gensalt(rounds=5)).decode()}\n")
    credentials = Credentials.load(path)
    costs: list[bytes] = []
    real = bcrypt.checkpw
    monkeypatch.setattr(bcrypt, "checkpw", lambda p, h: costs.append(h[:7]) or real(p, h))
    assert not credentials.verify("alice", "nope")
    assert not credentials.verify("mallory", "nope")
    assert costs == [b"$2b$05$", b"$2b$05$"]


def test_an_unknown_user_of_an_argon2_file_is_checked_with_argon2(tmp_path, monkeypatch):
    from tests.unit.identity.idfixtures import argon2_hash

    path = tmp_path / "credentials.txt"
    path.write_text(f"bob:{argon2_hash('pw')}\n")
    credentials = Credentials.load(path)
    used: list[str] = []
    real = argon2.PasswordHasher.verify
    monkeypatch.setattr(
        argon2.PasswordHasher, "verify", lambda self, h, p: used.append(h) or real(self, h, p)
    )
    assert not credentials.verify("mallory", "pw")
    assert used and used[0].startswith("$argon2id$")


def test_a_repeated_wrong_password_is_hashed_once(tmp_path, monkeypatch):
    path = tmp_path / "credentials.txt"
    path.write_text(f"alice:{bcrypt_hash('right')}\n")
    from tollhouse.identity.proxyauth import ProxyAuthenticator

    auth = ProxyAuthenticator(Credentials.load(path), None, {"alice": None})
    calls = []
    real = auth.basic.verify
    monkeypatch.setattr(auth.basic, "verify", lambda u, p: calls.append(u) or real(u, p))
    wrong = basic("alice", "wrong")
    for _ in range(5):  # a client retrying a stale password on every connection
        assert isinstance(auth.check(wrong), AuthFailure)
    assert len(calls) == 1
    assert not auth.slow(wrong)  # the refusal is answered from memory, on the loop
    right = basic("alice", "right")  # a corrected password works at once
    assert auth.check(right).user_id == "alice"


def test_the_authenticator_cache_is_bounded(tmp_path):
    from tollhouse.identity.proxyauth import ProxyAuthenticator

    path = tmp_path / "credentials.txt"
    path.write_text(f"alice:{bcrypt_hash('right')}\n")
    auth = ProxyAuthenticator(Credentials.load(path), None, {}, max_entries=8)
    for i in range(50):
        auth.check(basic("alice", f"guess-{i}"))
    assert len(auth._cache) <= 8 and len(auth._refused) <= 8


NETWORKS = """\
version: 1
mode: monitor
teams: [ops]
networks:
  - {cidr: 10.40.0.0/16, name: office, team: ops, mode: enforce}
  - {cidr: 10.40.5.0/24, name: printer-room}
  - {cidr: 10.40.5.128/25}
  - {cidr: "2001:db8::/32", mode: enforce}
  - {cidr: "2001:db8:1::/48", name: lab}
"""


def _identifier(tmp_path, text: str) -> Identifier:
    path = tmp_path / "identities.yaml"
    path.write_text(text)
    return Identifier(load_identities(path), b"s")


def test_a_named_sub_range_keeps_the_enforce_mode_of_its_enclosing_range(tmp_path):
    ident = _identifier(tmp_path, NETWORKS)
    # Adding a named range for attribution must not silently switch it to the global monitor.
    assert ident.mode("10.40.5.7") == Mode.ENFORCE
    assert ident.mode("10.40.5.200") == Mode.ENFORCE
    assert ident.mode("2001:db8:1::5") == Mode.ENFORCE
    assert ident.mode("10.41.0.1") == Mode.MONITOR
    # The most specific range with a name is the device; its team comes from the enclosing one.
    device = ident.device("10.40.5.200")
    assert device is not None and (device.user_id, device.team) == ("printer-room", "ops")
    assert ident.device("10.40.9.9").user_id == "office"
    assert ident.device("::ffff:10.40.5.1").user_id == "printer-room"
    verdict = ident.resolve(client_ip="10.40.5.200")
    assert verdict.mode == Mode.ENFORCE and verdict.team == "ops"


def test_a_truncated_secret_file_is_refused_not_used_as_an_empty_key(tmp_path):
    # Another process created the file and has not written it yet, or a disk filled up: an
    # empty HMAC key would make every fingerprint guessable and different from the registered.
    (tmp_path / keys.SECRET_NAME).write_text("")
    with pytest.raises(PolicyError, match="fingerprint"):
        keys.load_secret(tmp_path, environ={})
    (tmp_path / keys.SECRET_NAME).write_text("not hex at all\n")
    with pytest.raises(PolicyError, match="fingerprint"):
        keys.load_secret(tmp_path, environ={})


def test_the_secret_file_never_appears_half_written(tmp_path, monkeypatch):
    # Creation publishes a complete file in one step: a concurrent reader sees none or all.
    seen: list[int] = []
    real_write = os.write

    def spy(fd, data):
        path = tmp_path / keys.SECRET_NAME
        seen.append(path.stat().st_size if path.exists() else -1)
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    secret = keys.load_secret(tmp_path, environ={})
    assert len(secret) == 32 and seen and all(size == -1 for size in seen)
    assert (tmp_path / keys.SECRET_NAME).stat().st_mode & 0o777 == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name != keys.SECRET_NAME]


def test_concurrent_first_starts_agree_on_one_secret(tmp_path):
    results: list[bytes] = []
    barrier = threading.Barrier(6)

    def start() -> None:
        barrier.wait()
        results.append(keys.load_secret(tmp_path, environ={}))

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(results[0]) == 32


def test_password_hashing_does_not_use_the_shared_thread_pool(identifier):
    # Wrong passwords are cheap to send and dear to check: they must queue on the identity
    # stage's own threads, never starve the budget and DLP stages of the default pool.
    names: list[str] = []
    real = identifier.auth.basic.verify

    def spy(user, password):
        names.append(threading.current_thread().name)
        return real(user, password)

    import asyncio

    identifier.auth.basic.verify = spy
    try:
        result = asyncio.run(identifier.auth.check_async(basic("carol", f"x{time.time()}")))
    finally:
        identifier.auth.basic.verify = real
    assert isinstance(result, AuthFailure)
    assert names and all(n.startswith("tollhouse-auth") for n in names)


def test_an_algorithm_that_does_not_fit_the_named_key_is_refused(identifier, material):
    # ES256 signed with the EC key but naming the RSA key's kid (and the reverse): key confusion.
    for alg, kid in (("ES256", "rs256"), ("RS256", "es256")):
        result = identifier.auth.check("Bearer " + material.token(alg, kid=kid))
        assert isinstance(result, AuthFailure), (alg, kid)
