"""What users notice: source code, logs and data pass untouched; real credentials of every
listed provider are found however they are written; restore, hash keys and size limits behave."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import uuid

import pytest

from tests.unit.dlp.conftest import ALNUM, rand
from tollhouse.dlp import DlpError, DlpScanner, TooLargeToScan
from tollhouse.dlp.restore import SseRestorer
from tollhouse.exchange import Exchange, Role, Segment

HEX = "0123456789abcdef"
B64 = ALNUM + "+/"

# --- benign text: code, logs, data, math ---------------------------------------------------------


def _benign_corpus(seed: int = 11) -> list[str]:
    rng = random.Random(seed)

    def hexs(n: int) -> str:
        return "".join(rng.choice(HEX) for _ in range(n))

    def digits(n: int) -> str:
        return str(rng.randint(10 ** (n - 1), 10**n - 1))

    out: list[str] = []
    for i in range(30):
        blob = base64.b64encode(bytes(rng.getrandbits(8) for _ in range(300))).decode()
        sha512 = base64.b64encode(hashlib.sha512(str(i).encode()).digest()).decode()
        out += [
            f"const MASK = 0x{hexs(8)}; // flags",
            f"id = '{uuid.UUID(int=rng.getrandbits(128))}'",
            f"commit {hexs(40)}\nAuthor: dev <dev@example.com>",
            f"fixed in {hexs(7)} and {hexs(12)}",
            f"docker pull registry/app@sha256:{hexs(64)}",
            f'"integrity": "sha512-{sha512}"',
            f'resolved "https://registry.npmjs.org/lodash/-/lodash-4.17.{i}.tgz#{hexs(40)}"',
            f"img src='data:image/png;base64,{blob}'",
            f"Bumped the SDK from 2.{i}.0.1 to 2.{i}.0.2",
            f"version {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 40)}.{i} released",
            f"2024-03-1{i % 10}T10:{rng.randint(10, 59)}:{rng.randint(10, 59)}.123Z INFO took "
            f"{rng.randint(1, 999)} ms",
            f"timestamp=17{digits(11)} user_id={digits(10)} account={digits(12)}",
            f"user_id,amount\n{digits(12)},{rng.randint(1, 999)}.{rng.randint(10, 99)}",
            f"Order #{digits(3)}-{digits(3)}-{digits(4)} shipped",
            f"order number {digits(3)} {digits(3)} {digits(4)} is on its way",
            f"Copyright 2019-2024 Acme, build {digits(5)}.{digits(3)}",
            f"pi ~ 3.{digits(30)}",
            f"x = {digits(3)} * {digits(3)} - {digits(4)}",
            f"token_count: {digits(5)}, tokens_per_second: {rng.random() * 100:.3f}",
            f"password_min_length = {rng.randint(8, 16)}",
            "token = request.headers.get('Authorization', '').removeprefix('Bearer ')",
            "const apiKey = process.env.STRIPE_SECRET_KEY_FOR_PRODUCTION;",
            "secret = settings.SIGNING_SECRET_VALUE",
            "conn = connect(host=h, user=u, password=db_password_from_vault)",
            "api_key = os.environ['OPENAI_API_KEY']",
            f"lat,lon\n{rng.uniform(-90, 90):.6f},{rng.uniform(-180, 180):.6f}",
        ]
    return out


def test_benign_code_logs_and_data_have_no_findings(scanner: DlpScanner) -> None:
    found = {}
    for text in _benign_corpus():
        for f in scanner.scan_text(text):
            found.setdefault(f.entity_type, []).append(text[f.start : f.end])
    assert found == {}


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("NHS number 943 476 5919 on the form", "UK_NHS"),  # a valid NHS number, named
        ("call me on 415-555-0137 after the order ships", "PHONE_NUMBER"),
        ("the server 10.20.30.40 build failed", "IP_ADDRESS"),  # "build" after, not before
        ('db_password: "T7#kq9Lm!2vRx8"', "GENERIC_SECRET"),
    ],
)
def test_true_positives_survive_the_benign_fixes(
    scanner: DlpScanner, text: str, entity: str
) -> None:
    assert entity in {f.entity_type for f in scanner.scan_text(text)}


# --- credentials of every listed provider, in real formats and evasions ---------------------------


def _pem(header: str, seed: int) -> str:
    body = "\n".join(rand(B64, 64, seed * 10 + i) for i in range(5))
    return f"-----BEGIN {header}-----\n{body}\n-----END {header}-----"


def _jwt(seed: int) -> str:
    parts = ('{"alg":"RS256","typ":"JWT","kid":"k1"}', '{"sub":"42","exp":1900000000}')
    head = ".".join(base64.urlsafe_b64encode(p.encode()).decode().rstrip("=") for p in parts)
    return head + "." + rand(ALNUM + "-_", 86, seed)


def _full_width(s: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else "\u3000" for c in s)


FOUND = {
    "PRIVATE_KEY": [
        _pem(h, i)
        for i, h in enumerate(
            ("RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
        )
    ]
    + [json.dumps({"private_key": _pem("PRIVATE KEY", 9)})],  # JSON-escaped newlines
    "JWT": [_jwt(1)],
    "DATABASE_URL": [
        "postgresql://admin:S3cr3tPa55@db.prod.internal:5432/app",
        "redis://:p4ssw0rdXY@cache:6379/0",  # no user name
        "mongodb+srv://svc:Qw8zPl0xK@cluster0.ab1cd.mongodb.net/test",  # not an email
    ],
    "CONNECTION_STRING": [
        "Server=tcp:acme.database.windows.net,1433;User ID=app;Password=Zx9LmQ2p!R7;Encrypt=True;",
        "jdbc:postgresql://db:5432/app?user=app&password=Zx9LmQ2pR7",
    ],
    "AZURE_CONNECTION_STRING": [
        "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey="
        + rand(B64, 86, 4)
        + "==;EndpointSuffix=core.windows.net"
    ],
    "AZURE_KEY": [
        "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey="
        + rand(B64, 43, 5)
        + "=",
        "https://acme.blob.core.windows.net/c/f.txt?sv=2022-11-02&sp=r&sig="
        + rand(ALNUM, 43, 6)
        + "%3D",
    ],
    "GCP_SERVICE_ACCOUNT_KEY": [json.dumps({"private_key_id": rand(HEX, 40, 7)})],
    "SLACK_TOKEN": [
        "xapp-1-A"
        + rand(string.ascii_uppercase, 10)
        + f"-{rand(string.digits, 13)}-"
        + rand(HEX, 64)
    ],
    "STRIPE_KEY": ["whsec_" + rand(ALNUM, 32)],
    "NPM_TOKEN": [f"//registry.npmjs.org/:_authToken={uuid.UUID(int=random.getrandbits(128))}"],
    "GROQ_API_KEY": ["gsk_" + rand(ALNUM, 52)],
    "REPLICATE_API_TOKEN": ["r8_" + rand(ALNUM, 37)],
    "DIGITALOCEAN_TOKEN": ["dop_v1_" + rand(HEX, 64)],
    "SHOPIFY_TOKEN": ["shpat_" + rand(HEX, 32)],
    "PYPI_TOKEN": ["pypi-AgEIcHlwaS5vcmc" + rand(ALNUM + "-_", 100)],
    "DATABRICKS_TOKEN": ["dapi" + rand(HEX, 32)],
    "ATLASSIAN_TOKEN": ["ATATT3xFfGF0" + rand(ALNUM + "-_", 170)],
}


@pytest.mark.parametrize(("entity", "value"), [(e, v) for e, vs in FOUND.items() for v in vs])
def test_credentials_are_found(scanner: DlpScanner, entity: str, value: str) -> None:
    text = f"config:\n{value}\nthanks"
    assert entity in {f.entity_type for f in scanner.scan_text(text)}


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("key sk-proj-" + "\u200b".join(rand(ALNUM, 10, i) for i in range(6)), "OPENAI_API_KEY"),
        ("A\u200bKIA" + rand("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16), "AWS_ACCESS_KEY_ID"),
        (_full_width("ghp_" + rand(ALNUM, 36, 3)), "GITHUB_TOKEN"),
        ("card " + _full_width("4111 1111 1111 1111"), "CREDIT_CARD"),
    ],
)
def test_split_and_full_width_secrets_map_back_exactly(
    scanner: DlpScanner, text: str, entity: str
) -> None:
    findings = scanner.scan_text(text)
    assert [f.entity_type for f in findings] == [entity]
    assert findings[0].end == len(text)  # the span covers the original characters


# --- hash key, size limit ---------------------------------------------------------------------


def _exchange(text: str) -> Exchange:
    return Exchange("openai", "openai", "chat", "/v1", segments=[Segment(Role.USER, ("m",), text)])


def test_missing_hash_key_fails_closed_with_a_clear_reason(
    scanner: DlpScanner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(scanner.policy.hash_key_env, raising=False)
    assert "analytics" in (scanner.missing_hash_key() or "")
    with pytest.raises(DlpError) as err:
        scanner.inspect(_exchange("mail ann@acme.io"), "analytics")
    message = str(err.value)
    assert "EMAIL_ADDRESS" in message and scanner.policy.hash_key_env in message
    assert "ann@acme.io" not in message
    monkeypatch.setenv(scanner.policy.hash_key_env, "k")
    assert scanner.missing_hash_key() is None


def test_text_past_the_limit_is_refused_unscanned(scanner: DlpScanner) -> None:
    limit = scanner.policy.max_scan_chars
    with pytest.raises(TooLargeToScan, match=str(limit)):
        scanner.inspect(_exchange("a" * (limit + 1)))


# --- restore on server-sent events ------------------------------------------------------------


def _sse(pieces: list[str]) -> str:
    events = [
        "data: " + json.dumps({"id": "c", "choices": [{"index": 0, "delta": {"content": p}}]})
        for p in pieces
    ]
    events.append('data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}')
    events.append("data: [DONE]")
    return "".join(e + "\n\n" for e in events)


def _run(restorer: SseRestorer, stream: str, step: int) -> tuple[str, str]:
    out = "".join(restorer.feed(stream[i : i + step]) for i in range(0, len(stream), step))
    out += restorer.flush()
    text = "".join(
        choice.get("delta", {}).get("content", "")
        for line in out.splitlines()
        if line.startswith("data: {")
        for choice in json.loads(line[6:]).get("choices", [])
    )
    return out, text


@pytest.mark.parametrize("step", [1, 7, 10_000])
def test_placeholder_split_across_events_is_restored(step: int) -> None:
    restore = {"[EMAIL_1]": 'ann"q@acme.io', "[PHONE_1]": "+1 415 555 0137"}
    pieces = ["Write to ", "[", "EMAIL", "_", "1", "] or [", "see", " **[PHONE_1]**", " ["]
    out, text = _run(SseRestorer(restore), _sse(pieces), step)
    assert text == 'Write to ann"q@acme.io or [see **+1 415 555 0137** ['
    assert out.rstrip().endswith("data: [DONE]")


def test_unknown_placeholders_and_other_exchanges_values_are_left_alone() -> None:
    # Each exchange has its own map: [EMAIL_2] belongs to nobody here and stays as written.
    _, text = _run(SseRestorer({"[EMAIL_1]": "ann@acme.io"}), _sse(["[EMAIL_", "2] ok"]), 5)
    assert text == "[EMAIL_2] ok"


def test_events_without_placeholders_pass_byte_for_byte() -> None:
    stream = _sse(["plain ", "text"]) + "event: ping\ndata: {}\n\n"
    out, _ = _run(SseRestorer({"[EMAIL_1]": "ann@acme.io"}), stream, 3)
    assert out == stream
