"""Private keys in every shape a user pastes them, and keys glued to the text around them."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tollhouse.dlp import DlpScanner

AWS = "AKIA" + "Q3EGRN7YW5XTPLZB"  # real format, not AWS's documented example
GHP = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
SK = "sk-proj-" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"


def _pem(key, fmt: serialization.PrivateFormat) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEMS = {
    "pkcs1": _pem(RSA, serialization.PrivateFormat.TraditionalOpenSSL),
    "pkcs8": _pem(RSA, serialization.PrivateFormat.PKCS8),
    "openssh": _pem(RSA, serialization.PrivateFormat.OpenSSH),
    "ec": _pem(ec.generate_private_key(ec.SECP256R1()), serialization.PrivateFormat.PKCS8),
    "ed25519": _pem(ed25519.Ed25519PrivateKey.generate(), serialization.PrivateFormat.PKCS8),
}
PPK = (
    "PuTTY-User-Key-File-{v}: ssh-rsa\nEncryption: none\nComment: rsa-key-20240101\n"
    "Public-Lines: 2\nAAAAB3NzaC1yc2EAAAADAQABAAABAQC7\nZ2hpamtsbW5vcHFyc3R1dnd4eXo=\n"
    "Private-Lines: 2\nAAABAQCqGKukO1De7zhZj6+H0qtjTkVxwTCpvKe4eCZ0FPqri0cb2JZfXJ/DgYSF6vUp\n"
    "wmJG8wVQZKjeGcjDOL5UlsuusFncCzWBQ7RKNUSesmQRMSGkVb1/3j+skZ6UtW+5u09lHNsj6tQ5\n"
    "Private-MAC: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)


def _keys(scanner: DlpScanner, text: str) -> list[tuple[str, str, int, int]]:
    return [(f.entity_type, f.action, f.start, f.end) for f in scanner.scan_text(text)]


@pytest.mark.parametrize("name", list(PEMS))
def test_a_whole_private_key_is_one_blocked_finding(scanner, name):
    text = f"here is my key:\n{PEMS[name]}\nthanks"
    [(entity, action, start, end)] = _keys(scanner, text)
    assert (entity, action) == ("PRIVATE_KEY", "block")
    assert text[start:end].strip() == PEMS[name].strip()


@pytest.mark.parametrize("name", list(PEMS))
def test_a_private_key_without_its_end_line_is_found(scanner, name):
    body = PEMS[name].split("-----END")[0]
    [(entity, action, start, end)] = _keys(scanner, "key: " + body)
    assert (entity, action) == ("PRIVATE_KEY", "block") and end - start >= len(body) - 2


def test_a_begin_line_alone_is_a_private_key(scanner):
    [(entity, action, _, _)] = _keys(scanner, "-----BEGIN RSA PRIVATE KEY-----")
    assert (entity, action) == ("PRIVATE_KEY", "block")


@pytest.mark.parametrize("name", ["pkcs1", "pkcs8", "openssh", "ec", "ed25519"])
def test_a_key_body_without_its_begin_line_is_found(scanner, name):
    body = "\n".join(PEMS[name].strip().splitlines()[1:])  # the other message held the BEGIN
    assert [e for e, *_ in _keys(scanner, body)] == ["PRIVATE_KEY"]


def test_a_pem_body_longer_than_twelve_thousand_characters_is_covered(scanner):
    line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0MjQyNDI0MjQyNDI0MjQyNDI0MjQy"
    pem = "-----BEGIN PRIVATE KEY-----\n" + "\n".join([line] * 250) + "\n-----END PRIVATE KEY-----"
    assert len(pem) > 16_000
    assert _keys(scanner, pem) == [("PRIVATE_KEY", "block", 0, len(pem))]


def test_a_private_key_in_an_escaped_json_string_is_found(scanner):
    escaped = json.dumps(PEMS["pkcs1"])[1:-1]  # "\\n" instead of line breaks
    [(entity, _, start, end)] = _keys(scanner, escaped)
    assert entity == "PRIVATE_KEY" and end - start >= len(escaped) - 4


@pytest.mark.parametrize("version", ["2", "3"])
def test_putty_keys_are_private_keys(scanner, version):
    ppk = PPK.format(v=version)
    assert _keys(scanner, ppk) == [("PRIVATE_KEY", "block", 0, len(ppk))]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (f"creds_{AWS}.csv", AWS),
        (f"a,b\\n{AWS},c", AWS),  # an escaped CSV line inside a JSON string
        (f"x{AWS}y", AWS),  # fixed length, distinctive prefix: glued on both sides
        (f"token {GHP}_old", GHP),
        (f"my_{GHP}", GHP),
        (f"x\\n{SK}", SK),
        (f'"key":"{SK}"', SK),
    ],
)
def test_keys_glued_to_word_characters_are_found(scanner, text, value):
    found = [text[s:e] for _, _, s, e in _keys(scanner, text)]
    assert found == [value]


@pytest.mark.parametrize(
    "text",
    [
        "creds_AKIAIOSFODNN7EXAMPLE.csv",  # AWS's documented example key is allow-listed
        "task-scheduler-configuration-manager-v2-helpers-and-more",
        "my_variable_name_AKIA_is_fine and dapi_settings_for_the_cluster_are_here",
        "see https://github.com/org/repo/blob/main/ghp_notes.md",
        "the MIIT ministry and MIG welding",
    ],
)
def test_ordinary_identifiers_are_not_keys(scanner, text):
    assert _keys(scanner, text) == []
