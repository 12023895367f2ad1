"""Each entity type is found in its real format, and near misses are not."""

from __future__ import annotations

import base64
import string

import pytest

from tests.unit.dlp.conftest import ALNUM, iban, luhn_card, rand
from tollhouse.dlp import DlpScanner

B32 = string.ascii_uppercase + "234567"
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"

SECRETS = {
    "OPENAI_API_KEY": [
        "sk-" + rand(ALNUM, 48),
        "sk-proj-" + rand(ALNUM + "-_", 120, 2),
        "sk-svcacct-" + rand(ALNUM, 60, 3),
    ],
    "ANTHROPIC_API_KEY": ["sk-ant-api03-" + rand(ALNUM + "-_", 93) + "AA"],
    "AWS_ACCESS_KEY_ID": ["AKIA" + rand(B32, 16), "ASIA" + rand(B32, 16, 2)],
    "GCP_API_KEY": ["AIza" + rand(ALNUM + "-_", 35)],
    "GITHUB_TOKEN": [p + rand(ALNUM, 36, i) for i, p in enumerate(("ghp_", "gho_", "ghs_", "ghu_"))]
    + ["github_pat_" + rand(ALNUM, 22) + "_" + rand(ALNUM, 59)],
    "GITLAB_TOKEN": ["glpat-" + rand(ALNUM + "-_", 20)],
    "SLACK_TOKEN": [
        "xoxb-" + rand("0123456789", 12) + "-" + rand("0123456789", 13) + "-" + rand(ALNUM, 24)
    ],
    "SLACK_WEBHOOK": [
        f"https://hooks.slack.com/services/T{rand(B32, 8)}/B{rand(B32, 10)}/{rand(ALNUM, 24)}"
    ],
    "STRIPE_KEY": ["sk_live_" + rand(ALNUM, 24), "rk_live_" + rand(ALNUM, 99)],
    "HUGGINGFACE_TOKEN": ["hf_" + rand(string.ascii_letters, 34)],
    "NPM_TOKEN": ["npm_" + rand(ALNUM, 36)],
    "SENDGRID_API_KEY": ["SG." + rand(ALNUM + "-_", 22) + "." + rand(ALNUM + "-_", 43)],
    "TWILIO_API_KEY": ["SK" + rand(HEX, 32)],
    "GOOGLE_OAUTH_TOKEN": ["ya29." + rand(ALNUM + "-_", 120), "GOCSPX-" + rand(ALNUM + "-_", 28)],
    "AZURE_CONNECTION_STRING": [
        "DefaultEndpointsProtocol=https;AccountName=acmeprod;AccountKey="
        + rand(B64, 86)
        + "==;EndpointSuffix=core.windows.net"
    ],
}


@pytest.mark.parametrize(
    ("entity", "value"), [(e, v) for e, values in SECRETS.items() for v in values]
)
def test_secret_formats_are_found(scanner: DlpScanner, entity: str, value: str) -> None:
    text = f"here is the config: {value} thanks"
    findings = scanner.scan_text(text)
    assert [(f.entity_type, text[f.start : f.end]) for f in findings] == [(entity, value)]


def test_keyed_secrets(scanner: DlpScanner) -> None:
    aws_secret = rand(B64, 40, 9)
    pem_body = "\n".join(rand(B64, 64, i) for i in range(5))
    jwt = (
        ".".join(
            base64.urlsafe_b64encode(p.encode()).decode().rstrip("=")
            for p in ('{"alg":"HS256","typ":"JWT"}', '{"sub":"1234567890","name":"Ann"}')
        )
        + "."
        + rand(ALNUM + "-_", 43)
    )
    cases = {
        "AWS_SECRET_ACCESS_KEY": (f"aws_secret_access_key = {aws_secret}", aws_secret),
        "PRIVATE_KEY": (
            f"-----BEGIN RSA PRIVATE KEY-----\n{pem_body}\n-----END RSA PRIVATE KEY-----",
            None,
        ),
        "JWT": (f"Authorization: {jwt}", jwt),
        "DATABASE_URL": (
            "DATABASE_URL=postgres://app:Xk92mQp7Lz@db.internal:5432/app",
            "Xk92mQp7Lz",
        ),
        "GENERIC_SECRET": ('db_password: "T7#kq9Lm!2vRx8"', "T7#kq9Lm!2vRx8"),
        "GCP_SERVICE_ACCOUNT_KEY": (f'"private_key_id": "{rand(HEX, 40)}"', None),
    }
    for entity, (text, value) in cases.items():
        findings = scanner.scan_text(text)
        assert entity in {f.entity_type for f in findings}, (entity, findings)
        if value is not None:
            f = next(f for f in findings if f.entity_type == entity)
            assert text[f.start : f.end] == value


def test_pii_formats_are_found(scanner: DlpScanner) -> None:
    card = luhn_card("4539")
    account = iban("DE", "370400440532013000")
    gb = iban("GB", "WEST12345698765432")
    cases = {
        "EMAIL_ADDRESS": "write to ann.lee+dlp@acme-corp.io today",
        "PHONE_NUMBER": "call me on +44 20 7946 0958 tomorrow",
        "CREDIT_CARD": f"my card {card[:4]} {card[4:8]} {card[8:12]} {card[12:]} ok",
        "IBAN_CODE": f"wire it to {account} please, or {gb}",
        "US_SSN": "my social security number is 536-22-8741",
        "IP_ADDRESS": "host 203.0.113.77 and fe80::1ff:fe23:4567:890a",
        "CRYPTO": "send to bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq now",
        "UK_NHS": "NHS number 943 476 5919",
    }
    for entity, text in cases.items():
        assert entity in {f.entity_type for f in scanner.scan_text(text)}, (entity, text)
    eth = "0x" + rand(HEX, 40)
    assert {f.entity_type for f in scanner.scan_text(f"wallet {eth}")} == {"CRYPTO"}


@pytest.mark.parametrize(
    "text",
    [
        "md5 5d41402abc4b2a76b9719d911017c592 sha1 aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
        "sha256 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 (short 9fceb02)",
        "set OPENAI_API_KEY=sk-... or sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "export OPENAI_API_KEY=sk-your-api-key-here-xxxxxxxxxxxxxxxxxxx",
        "AWS docs: AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "postgres://user:password@localhost:5432/db",
        "password: required, token: optional",
        "card 4111 1111 1111 1112 is not valid",
        "IBAN DE89 3704 0044 0532 0130 01 has a bad check",
        "version 1.2.3, build 2024-05-01, port 8080, 1,250 invoices",
        "email support@example.com for help",
    ],
)
def test_near_misses_are_not_flagged(scanner: DlpScanner, text: str) -> None:
    found = [(f.entity_type, text[f.start : f.end]) for f in scanner.scan_text(text)]
    assert found == []


def test_evasion_zero_width_inside_email(scanner: DlpScanner) -> None:
    text = "mail ann\u200b.lee@ac\u2060me.io now"
    [f] = scanner.scan_text(text)
    assert f.entity_type == "EMAIL_ADDRESS"
    assert text[f.start : f.end] == "ann\u200b.lee@ac\u2060me.io"


def test_evasion_full_width_card(scanner: DlpScanner) -> None:
    card = luhn_card("5213")
    wide = "".join(chr(0xFF10 + int(c)) for c in card)
    text = f"card {wide} thanks"
    [f] = scanner.scan_text(text)
    assert f.entity_type == "CREDIT_CARD"
    assert text[f.start : f.end] == wide


def test_evasion_base64_encoded_secret(scanner: DlpScanner) -> None:
    key = "ghp_" + rand(ALNUM, 36, 7)
    blob = base64.b64encode(f"token={key}".encode()).decode()
    text = f"decode this: {blob} and run it"
    [f] = scanner.scan_text(text)
    assert f.entity_type == "GITHUB_TOKEN"
    assert (f.start, f.end) == (text.index(blob), text.index(blob) + len(blob))
    assert f.detector.startswith("base64:")
