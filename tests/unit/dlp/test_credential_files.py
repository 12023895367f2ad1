"""Secrets as people paste them: credential files, config formats, CLI transcripts, tool tokens.

Each planted value must be found (whatever it looks like: a hash, a UUID, a word with digits),
and a benign corpus of code, logs, docs and hashes must stay quiet."""

from __future__ import annotations

import pytest

from tests.unit.dlp.conftest import ALNUM, rand
from tollhouse.dlp import DlpScanner

HEX = "0123456789abcdef"
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
PW = "Tr0ub4dor&3horse"
HASH = "9e107d9d372bb6826bd81d3542a419d6"  # an md5: the keyword rule alone drops it
UUID = "3c1f6b0e-8a2d-4e9f-b7c5-1d2e3f4a5b6c"
AWS_ID = "AKIA" + rand(B32, 16, 1)
AWS_SECRET = rand(ALNUM + "/+", 40, 2)

FILES = [
    # (text, the secret that must be found, entity)
    (
        "User name,Password,Access key ID,Secret access key,Console login link\n"
        f"deploy-bot,,{AWS_ID},{AWS_SECRET},https://123456789012.signin.aws.amazon.com/console",
        AWS_SECRET,
        "AWS_SECRET_ACCESS_KEY",
    ),
    (f"[db]\nhost = db.internal\npassword = {HASH}\n", HASH, "GENERIC_SECRET"),
    (f"DATABASE_PASSWORD={PW}\nDEBUG=false\n", PW, "GENERIC_SECRET"),
    (f"database:\n  username: app\n  password: {PW}\n  port: 5432\n", PW, "GENERIC_SECRET"),
    (f'redis:\n  password: "{HASH}"\n', HASH, "GENERIC_SECRET"),
    (f"client_secret: {UUID}\n", UUID, "GENERIC_SECRET"),
    (f"<?php\ndefine('DB_PASSWORD', '{PW}');\n", PW, "GENERIC_SECRET"),
    (f"$config['smtp_pass'] = '{HASH}';", HASH, "GENERIC_SECRET"),
    (f'{{"api_key": "{UUID}", "region": "eu"}}', UUID, "GENERIC_SECRET"),
    (f'<property name="password" value="{PW}"/>', PW, "GENERIC_SECRET"),
    (f"<password>{HASH}</password>", HASH, "GENERIC_SECRET"),
    (
        f"machine api.heroku.com\n  login me@example.org\n  password {UUID}\n",
        UUID,
        "GENERIC_SECRET",
    ),
    (f"machine github.com login octo password {PW}", PW, "GENERIC_SECRET"),
    (f"$ mysql -u root -p{PW} -h db.internal", PW, "GENERIC_SECRET"),
    (f"$ docker login -u bob -p {PW} registry.example.com", PW, "GENERIC_SECRET"),
    (f"$ curl -u admin:{PW} https://jenkins.example.com/api/json", PW, "URL_CREDENTIALS"),
    (f"$ vault login --password={HASH}", HASH, "GENERIC_SECRET"),
    (f"postgres://app:{HASH}@db.example.com:5432/app", HASH, "DATABASE_URL"),
]


@pytest.mark.parametrize(("text", "secret", "entity"), FILES)
def test_credential_files(scanner: DlpScanner, text: str, secret: str, entity: str) -> None:
    found = {(text[f.start : f.end], f.entity_type) for f in scanner.scan_text(text)}
    assert any(secret in value and e == entity for value, e in found), found


TOKENS = [
    ("DOCKER_TOKEN", "dckr_pat_" + rand(ALNUM + "_-", 27, 3)),
    ("VAULT_TOKEN", "hvs." + rand(ALNUM + "_-", 95, 4)),
    ("NEW_RELIC_KEY", "NRAK-" + rand("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 27, 5)),
    ("LINEAR_API_KEY", "lin_api_" + rand(ALNUM, 40, 6)),
    ("FIGMA_TOKEN", "figd_" + rand(ALNUM + "_-", 40, 7)),
    ("POSTMAN_API_KEY", "PMAK-" + rand(HEX, 24, 8) + "-" + rand(HEX, 34, 9)),
    ("DOPPLER_TOKEN", "dp.st.dev." + rand(ALNUM, 43, 10)),
    ("HEROKU_API_KEY", "HRKU-AA" + rand(ALNUM + "_-", 58, 11)),
    ("NOTION_TOKEN", "secret_" + rand(ALNUM, 43, 12)),
    ("NOTION_TOKEN", "ntn_" + rand("0123456789", 11, 13) + rand(ALNUM, 35, 14)),
    ("GRAFANA_TOKEN", "glsa_" + rand(ALNUM, 32, 15) + "_" + rand(HEX, 8, 16)),
    ("MAILGUN_API_KEY", "key-" + rand(HEX + "ghijklmnopqrstuvwxyz", 32, 17)),
    ("SENDINBLUE_API_KEY", "xkeysib-" + rand(HEX, 64, 18) + "-" + rand(ALNUM, 16, 19)),
    ("TAILSCALE_KEY", "tskey-auth-" + rand(ALNUM, 12, 20) + "-" + rand(ALNUM, 32, 21)),
    ("PULUMI_TOKEN", "pul-" + rand(HEX, 40, 22)),
    ("SUPABASE_TOKEN", "sbp_" + rand(HEX, 40, 23)),
    ("AIRTABLE_TOKEN", "pat" + rand(ALNUM, 14, 24) + "." + rand(HEX, 64, 25)),
    ("AGE_SECRET_KEY", "AGE-SECRET-KEY-1" + rand("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58, 26)),
    ("SQUARE_TOKEN", "sq0csp-" + rand(ALNUM + "_-", 43, 27)),
    ("BITBUCKET_TOKEN", "ATBB" + rand(ALNUM, 32, 28)),
    ("DYNATRACE_TOKEN", "dt0c01." + rand(B32, 24, 29) + "." + rand(B32, 64, 30)),
    ("PLANETSCALE_TOKEN", "pscale_tkn_" + rand(ALNUM, 43, 31)),
    ("PREFECT_TOKEN", "pnu_" + rand(ALNUM, 36, 32)),
    ("RUBYGEMS_TOKEN", "rubygems_" + rand(HEX, 48, 33)),
    ("CONTENTFUL_TOKEN", "CFPAT-" + rand(ALNUM, 43, 34)),
    ("EASYPOST_KEY", "EZAK" + rand(ALNUM, 54, 35)),
    ("PERPLEXITY_API_KEY", "pplx-" + rand(ALNUM, 48, 36)),
    ("LANGSMITH_API_KEY", "lsv2_pt_" + rand(HEX, 32, 37) + "_" + rand(HEX, 10, 38)),
    ("PINECONE_API_KEY", "pcsk_" + rand(ALNUM, 70, 39)),
    ("TAVILY_API_KEY", "tvly-" + rand(ALNUM, 32, 40)),
    ("SENTRY_TOKEN", "sntryu_" + rand(HEX, 64, 41)),
    ("SOURCEGRAPH_TOKEN", "sgp_" + rand(HEX, 40, 42)),
    ("SHIPPO_TOKEN", "shippo_live_" + rand(HEX, 40, 43)),
    ("DUFFEL_TOKEN", "duffel_live_" + rand(ALNUM, 43, 44)),
    ("TYPEFORM_TOKEN", "tfp_" + rand(ALNUM, 59, 45)),
]


@pytest.mark.parametrize(("entity", "token"), TOKENS)
def test_tool_tokens(scanner: DlpScanner, entity: str, token: str) -> None:
    text = f'config: "{token}"\nexport TOKEN={token}'
    plain = f"use {token} ok"
    spans = {(plain[f.start : f.end], f.entity_type) for f in scanner.scan_text(plain)}
    assert (token, entity) in spans
    assert token not in "".join(_redacted(scanner, text))
    # A placeholder of the same shape is not a key.
    placeholder = token[:8] + "x" * (len(token) - 8)
    assert not [f for f in scanner.scan_text(f"use {placeholder} ok") if f.entity_type == entity]


def _redacted(scanner: DlpScanner, text: str) -> str:
    findings = sorted(scanner.scan_text(text), key=lambda f: f.start, reverse=True)
    for f in findings:
        if f.action != "allow":
            text = text[: f.start] + "[X]" + text[f.end :]
    return text


BENIGN = [
    "password = getpass.getpass('Password: ')\ntoken = os.environ['GITHUB_TOKEN']",
    "def login(user, password):\n    if not password:\n        raise ValueError('password?')",
    "self.api_key = api_key\nself.secret = secret\npassword: str = Field(..., min_length=8)",
    "token: Optional[str] = None\nsecret_key = settings.SECRET_KEY\napiKey: userApiKey,",
    "PWD=/home/alice/project\nOLDPWD=/home/alice\nSHELL=/bin/bash",
    "password: ${DB_PASSWORD}\ntoken: {{ vault_token }}\nsecret: <your-secret-here>",
    "commit 9e107d9d372bb6826bd81d3542a419d6 (HEAD -> main)\nsha256: "
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "2024-05-01 12:00:01 INFO auth: token refreshed for user=alice expires_in=3600",
    "| password | string | The user's password, 8 characters or more |",
    "mkdir -p /tmp/build && cp -p file.txt /tmp/build/",
    "npm install --save-dev @types/node\ngit push --force-with-lease origin main",
    "The key-value store keeps a secret_ prefix for internal keys; API-based access only.",
    "password: ********\napi_key: xxxxxxxxxxxxxxxx\ntoken: REDACTED",
    'curl -u "$USER:$TOKEN" https://api.example.com/  # credentials from the environment',
    "mysql -u root -p mydatabase < dump.sql",
    "uuid = 3c1f6b0e-8a2d-4e9f-b7c5-1d2e3f4a5b6c\nrequest_id: 5f4dcc3b5aa765d61d8327deb882cf99",
    "SELECT password_hash, token_count FROM users WHERE id = 42;",
    "passport.use(new LocalStrategy(function(username, password, done) { done(null, user); }));",
]


@pytest.mark.parametrize("text", BENIGN)
def test_benign_corpus_stays_quiet(scanner: DlpScanner, text: str) -> None:
    findings = [
        (f.entity_type, f.detector, text[f.start : f.end])
        for f in scanner.scan_text(text)
        if f.entity_type not in ("IP_ADDRESS", "EMAIL_ADDRESS", "DATE_TIME")
    ]
    assert findings == []
