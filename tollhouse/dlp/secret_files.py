"""Secrets as people paste them: config and credential files, CLI transcripts, tool tokens.

The keyword rule of :mod:`tollhouse.dlp.secrets` wants a random-looking value, so that prose
("the token is refreshed hourly") and code stay quiet; it drops hex digests and UUIDs, which
look like identifiers. Here the *place* says it is a secret: a key named like a password in an
INI, YAML, .env, PHP or XML file, the password line of a .netrc, a CLI flag, a CSV export of
cloud keys. There the value counts whatever it looks like (a hash, a UUID, a word with a digit),
except documentation stand-ins, variable references and type names.

Token formats of developer tools follow each vendor's documented prefix and length (the same
formats gitleaks' rules describe).
"""

from __future__ import annotations

import re

from tollhouse.dlp.secrets import SecretSpec
from tollhouse.dlp.validators import (
    VALIDATORS,
    high_entropy_secret,
    is_placeholder,
    url_password,
)

__all__ = ["CONFIG_SECRETS", "TOOL_SECRETS", "config_secret", "keyword_secret"]

# Values that name a type, a setting or an empty field, not a secret.
_NOT_VALUES = frozenset(
    (
        "string",
        "str",
        "integer",
        "int",
        "number",
        "boolean",
        "bool",
        "object",
        "array",
        "required",
        "optional",
        "null",
        "none",
        "nil",
        "true",
        "false",
        "yes",
        "no",
        "undefined",
        "empty",
        "redacted",
        "hidden",
        "masked",
        "secret",
        "password",
        "passwd",
        "token",
        "example",
        "changeme",
        "default",
        "value",
        "your_password",
        "your_token",
        "mypassword",
        "env",
    )
)
# Templates and references ("${DB_PASS}", "{{ vault }}", "%(pw)s", "<secret>"), masks, paths
# ("PWD=/home/me" in an environment dump) and URLs (the URL rules read those).
_TEMPLATE = re.compile(
    r"^[${<%]|\$\{|\{\{|%\(|^\*+$|^x+$|^\.+$|^(?:/|~/|\./|[A-Za-z]:\\)|^\w+://", re.I
)
# A variable's name: "api_key = api_key", "password: userPassword" (code, not a value); a
# type ("token: Optional[str]"); a setting's number ("tokens_per_second: 88.090").
_IDENTIFIER = re.compile(
    r"(?:[a-z_]+|[a-z]+(?:[A-Z][a-z]+)+|[A-Z_]+|[A-Z][a-z]+|[a-z][a-z_.-]{0,19}|0x[0-9a-fA-F]+"
    r"|[A-Za-z_]\w*(?:\.\w+)+|[A-Za-z][a-z]*(?: [a-z]+)+"
    r"|[A-Za-z_][\w.]*\[[\w., \[\]|]*\]|[\d.,+-]{1,9})[)\]},;]*"
)


def config_secret(text: str) -> bool | None:
    """A value in a secret's place: anything but a stand-in, a reference or a plain word."""
    value = text.strip("'\"` ")
    if len(value) < 4 or value.lower() in _NOT_VALUES or _TEMPLATE.search(value):
        return False
    if value.isalpha() and value.islower() and len(value) < 12:
        return False  # "password: admin" is a stand-in more often than a password
    if _IDENTIFIER.fullmatch(value):
        return False
    if is_placeholder(value) or url_password(value) is False:
        return False
    return None


def keyword_secret(text: str) -> bool | None:
    """The keyword rule's validator (a random-looking value) without paths and types:
    "PWD=/home/me" in an environment dump, "token: Optional[str]" in code."""
    value = text.strip("'\"` ")
    if _TEMPLATE.search(value) or _IDENTIFIER.fullmatch(value):
        return False
    return high_entropy_secret(text)


VALIDATORS.setdefault("config_secret", config_secret)
VALIDATORS.setdefault("keyword_secret", keyword_secret)

# Key names that hold a secret. A prefix before the keyword ("DB_", "smtp_", "$db_") is fine:
# the pattern starts at the keyword and the trigger finds it wherever it sits.
_KEY = (
    r"(?i:pass(?:word|wd|phrase)?|pwd|secret(?:[_-]?key)?|client[_-]?secret"
    r"|(?:api|access|auth|private|secret)[_-]?(?:key|token)|token)"
)
_VALUE = r"([^\s\"'`#;,<>{}]{4,200})"  # an unquoted value
_QVALUE = r"[\"']([^\"'\r\n]{4,200})[\"']"  # a quoted value
_CONFIG_TRIGGERS = tuple(
    "kw:" + w
    for w in (
        "pass",
        "pwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "api-key",
        "access_key",
        "access-key",
        "private_key",
        "auth_key",
        "auth_token",
    )
)

CONFIG_SECRETS: tuple[SecretSpec, ...] = (
    SecretSpec(
        "GENERIC_SECRET",
        "config_quoted_secret",
        _CONFIG_TRIGGERS,
        # $cfg['smtp_pass'] = '…', "password": "…", YAML password: "…", 'password' => '…'.
        _KEY + r"[\w.-]{0,30}[\"']?\]?[ \t]{0,5}(?:[:=]|=>)[ \t]{0,5}" + _QVALUE,
        0.85,
        "config_secret",
        1,
        280,
    ),
    SecretSpec(
        "GENERIC_SECRET",
        "config_line_secret",
        _CONFIG_TRIGGERS,
        # INI / .env / YAML / properties: the assignment is the whole rest of the line.
        _KEY + r"[\w.-]{0,30}[ \t]{0,5}[:=][ \t]{0,5}" + _VALUE + r"[ \t]{0,20}+(?=\r?\n|\\n|$)",
        0.85,
        "config_secret",
        1,
        280,
    ),
    SecretSpec(
        "GENERIC_SECRET",
        "php_define_secret",
        ("kw:define(",),
        r"(?i:define)\([ \t]{0,5}[\"'][A-Z0-9_]{0,40}(?:PASS|PWD|SECRET|KEY|TOKEN|SALT)"
        r"[A-Z0-9_]{0,40}[\"'][ \t]{0,5},[ \t]{0,5}" + _QVALUE,
        0.85,
        "config_secret",
        1,
        300,
    ),
    SecretSpec(
        "GENERIC_SECRET",
        "xml_secret",
        ("kw:pass", "kw:secret", "kw:token"),
        # <password>…</password>, <add key="ApiSecret" value="…"/>, name="password" value="…"
        _KEY + r"[\w.-]{0,30}(?:>|[\"'][ \t]{1,5}value=[\"'])([^<\"'\r\n]{4,200})(?:</|[\"'])",
        0.85,
        "config_secret",
        1,
        280,
    ),
    SecretSpec(
        "GENERIC_SECRET",
        "netrc_password",
        ("kw:login",),
        r"(?i:login)[ \t]+\S{1,100}\s{1,40}(?i:password)[ \t]+(\S{3,200})",
        0.9,
        "config_secret",
        1,
        360,
    ),
    SecretSpec(
        "GENERIC_SECRET",
        "cli_password_flag",
        ("kw:--pass", "kw:--token", "kw:--secret", "kw:--api-key", "kw:--auth"),
        r"--(?i:password|passwd|pass|token|secret|api-key|auth-token)[ \t=]{1,3}[\"']?"
        r"([^\s\"']{4,200}+)",
        0.85,
        "config_secret",
        1,
        240,
    ),
    SecretSpec(
        "GENERIC_SECRET",
        "cli_short_password",
        ("kw:mysql", "kw:mariadb", "kw:sshpass", "kw:docker login", "kw:podman login"),
        # mysql -u root -pS3cret, sshpass -p S3cret ssh …, docker login -u bob -p S3cret
        r"(?i:mysql(?:dump|admin)?|mariadb|sshpass|docker login|podman login)[^\r\n]{0,200}?"
        r"[ \t]-p(?:[ \t]{1,3}|(?=[^\s-]))([^\s\"'-][^\s\"']{3,200}+)",
        0.85,
        "config_secret",
        1,
        420,
    ),
    SecretSpec(
        "URL_CREDENTIALS",
        "cli_user_password",
        ("kw: -u ", "kw:--user "),
        r"(?: -u|--user) [\"']?[^\s:\"']{1,100}:([^\s@\"']{4,200})[\"']?(?=\s)",
        0.85,
        "config_secret",
        1,
        320,
    ),
    SecretSpec(
        "AWS_SECRET_ACCESS_KEY",
        "aws_csv_export",
        ("kw:secret access key",),
        # The console's credentials CSV: a header line, then user,password,key id,secret.
        r"(?i:secret access key)[^\r\n]{0,200}+\r?\n[^\r\n,]{0,100}+,[^\r\n,]{0,100}+,"
        r"(?:AKIA|ASIA)[A-Z2-7]{16},([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
        0.95,
        None,
        1,
        500,
    ),
)


def _token(
    entity: str, name: str, prefixes: tuple[str, ...], pattern: str, score: float = 0.95
) -> SecretSpec:
    """A token with a distinctive literal prefix: no letter, digit, "_" or "-" may precede or
    follow it (so "abc_glsa_…" or a longer run is not this format)."""
    return SecretSpec(
        entity,
        name,
        tuple("lit:" + p for p in prefixes),
        r"(?<![A-Za-z0-9_-])" + pattern + r"(?![A-Za-z0-9_-])",
        score,
    )


TOOL_SECRETS: tuple[SecretSpec, ...] = (
    _token(
        "DOCKER_TOKEN",
        "docker_pat",
        ("dckr_pat_", "dckr_oat_"),
        r"dckr_(?:pat|oat)_[A-Za-z0-9_-]{27,36}+",
    ),
    _token("VAULT_TOKEN", "vault_token", ("hvs.", "hvb."), r"hv[sb]\.[A-Za-z0-9_-]{90,200}+"),
    _token(
        "NEW_RELIC_KEY",
        "new_relic_key",
        ("NRAK-", "NRII-", "NRJS-"),
        r"NR(?:AK|II|JS)-[A-Z0-9]{27}",
    ),
    _token("LINEAR_API_KEY", "linear_key", ("lin_api_",), r"lin_api_[A-Za-z0-9]{40}"),
    _token("FIGMA_TOKEN", "figma_token", ("figd_",), r"figd_[A-Za-z0-9_-]{40}"),
    _token("POSTMAN_API_KEY", "postman_key", ("PMAK-",), r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}"),
    _token(
        "DOPPLER_TOKEN",
        "doppler_token",
        ("dp.pt.", "dp.st.", "dp.sa.", "dp.ct.", "dp.scim.", "dp.audit."),
        r"dp\.(?:pt|st|sa|ct|scim|audit)\.(?:[a-z0-9_-]{2,35}+\.)?[A-Za-z0-9]{40,44}+",
    ),
    _token("HEROKU_API_KEY", "heroku_key", ("HRKU-",), r"HRKU-AA[A-Za-z0-9_-]{58}"),
    _token(
        "NOTION_TOKEN",
        "notion_token",
        ("ntn_", "secret_"),
        r"(?:ntn_[0-9]{11}[A-Za-z0-9]{35}|secret_[A-Za-z0-9]{43})",
    ),
    _token(
        "GRAFANA_TOKEN",
        "grafana_token",
        ("glsa_", "glc_"),
        r"(?:glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/]{32,400}+={0,2})",
    ),
    _token("MAILGUN_API_KEY", "mailgun_key", ("key-",), r"key-[0-9a-z]{32}", 0.85),
    _token(
        "SENDINBLUE_API_KEY",
        "brevo_key",
        ("xkeysib-", "xsmtpsib-"),
        r"x(?:key|smtp)sib-[a-f0-9]{64}-[A-Za-z0-9]{16}",
    ),
    _token(
        "TAILSCALE_KEY",
        "tailscale_key",
        ("tskey-",),
        r"tskey-(?:api|auth|client|scim|webhook)-[A-Za-z0-9]{6,20}+-[A-Za-z0-9]{20,60}+",
    ),
    _token("PULUMI_TOKEN", "pulumi_token", ("pul-",), r"pul-[a-f0-9]{40}"),
    _token("SUPABASE_TOKEN", "supabase_token", ("sbp_",), r"sbp_[a-f0-9]{40}"),
    _token("NETLIFY_TOKEN", "netlify_token", ("nfp_",), r"nfp_[A-Za-z0-9]{36}"),
    _token("AIRTABLE_TOKEN", "airtable_pat", ("pat",), r"pat[A-Za-z0-9]{14}\.[a-f0-9]{64}"),
    _token(
        "AGE_SECRET_KEY",
        "age_secret_key",
        ("AGE-SECRET-KEY-1",),
        r"AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}",
        0.99,
    ),
    _token(
        "SQUARE_TOKEN",
        "square_token",
        ("sq0atp-", "sq0csp-", "EAAA"),
        r"(?:sq0atp-[A-Za-z0-9_-]{22}|sq0csp-[A-Za-z0-9_-]{43}|EAAA[A-Za-z0-9_-]{60})",
    ),
    _token(
        "BITBUCKET_TOKEN",
        "bitbucket_token",
        ("ATBB", "ATCTT3"),
        r"(?:ATBB[A-Za-z0-9_=.-]{32}|ATCTT3[A-Za-z0-9_=-]{150,250}+)",
    ),
    _token(
        "MAPBOX_TOKEN",
        "mapbox_secret_token",
        ("sk.eyJ",),
        r"sk\.eyJ[A-Za-z0-9_-]{50,500}+\.[A-Za-z0-9_-]{20,100}+",
    ),
    _token(
        "DYNATRACE_TOKEN", "dynatrace_token", ("dt0c01.",), r"dt0c01\.[A-Z0-9]{24}\.[A-Z0-9]{64}"
    ),
    _token(
        "PLANETSCALE_TOKEN",
        "planetscale_token",
        ("pscale_tkn_", "pscale_pw_", "pscale_oauth_"),
        r"pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.-]{32,64}+",
    ),
    _token("PREFECT_TOKEN", "prefect_token", ("pnu_",), r"pnu_[A-Za-z0-9]{36}"),
    _token("RUBYGEMS_TOKEN", "rubygems_token", ("rubygems_",), r"rubygems_[a-f0-9]{48}"),
    _token("CONTENTFUL_TOKEN", "contentful_token", ("CFPAT-",), r"CFPAT-[A-Za-z0-9_-]{43}"),
    _token(
        "DUFFEL_TOKEN",
        "duffel_token",
        ("duffel_test_", "duffel_live_"),
        r"duffel_(?:test|live)_[A-Za-z0-9_=-]{43}",
    ),
    _token("EASYPOST_KEY", "easypost_key", ("EZAK", "EZTK"), r"EZ[AT]K[A-Za-z0-9]{54}"),
    _token(
        "FLUTTERWAVE_KEY",
        "flutterwave_key",
        ("FLWSECK_TEST-", "FLWSECK-"),
        r"FLWSECK(?:_TEST)?-[a-h0-9]{32}-X",
    ),
    _token("TYPEFORM_TOKEN", "typeform_token", ("tfp_",), r"tfp_[A-Za-z0-9_.=-]{59}"),
    _token("PERPLEXITY_API_KEY", "perplexity_key", ("pplx-",), r"pplx-[A-Za-z0-9]{48}"),
    _token(
        "LANGSMITH_API_KEY",
        "langsmith_key",
        ("lsv2_pt_", "lsv2_sk_"),
        r"lsv2_(?:pt|sk)_[a-f0-9]{32}_[a-f0-9]{10}",
    ),
    _token("PINECONE_API_KEY", "pinecone_key", ("pcsk_",), r"pcsk_[A-Za-z0-9_]{60,120}+"),
    _token("TAVILY_API_KEY", "tavily_key", ("tvly-",), r"tvly-(?:dev-|prod-)?[A-Za-z0-9]{32}"),
    _token("FIRECRAWL_API_KEY", "firecrawl_key", ("fc-",), r"fc-[a-f0-9]{32}", 0.85),
    _token(
        "SENTRY_TOKEN",
        "sentry_token",
        ("sntrys_", "sntryu_"),
        r"(?:sntrys_eyJ[A-Za-z0-9+/=_-]{60,400}+|sntryu_[a-f0-9]{64})",
    ),
    _token(
        "SOURCEGRAPH_TOKEN", "sourcegraph_token", ("sgp_",), r"sgp_(?:[a-f0-9]{16}_)?[a-f0-9]{40}"
    ),
    _token(
        "CLOUDFLARE_TOKEN", "cloudflare_origin_ca", ("v1.0-",), r"v1\.0-[a-f0-9]{24}-[a-f0-9]{146}"
    ),
    _token("TWITCH_TOKEN", "frameio_token", ("fio-u-",), r"fio-u-[A-Za-z0-9_=-]{64}"),
    _token("SCALINGO_TOKEN", "scalingo_token", ("tk-us-",), r"tk-us-[A-Za-z0-9_-]{48}"),
    _token("OCTOPUS_API_KEY", "octopus_key", ("API-",), r"API-[A-Z0-9]{26}", 0.8),
    _token("READMEIO_KEY", "readme_key", ("rdme_",), r"rdme_[a-z0-9]{70}"),
    _token("CLOJARS_TOKEN", "clojars_token", ("CLOJARS_",), r"CLOJARS_[a-z0-9]{60}"),
    _token(
        "SHIPPO_TOKEN",
        "shippo_token",
        ("shippo_live_", "shippo_test_"),
        r"shippo_(?:live|test)_[a-f0-9]{40}",
    ),
    SecretSpec(
        "SENTRY_DSN",
        "sentry_dsn",
        ("lit:https://",),
        r"https://([a-f0-9]{32})@o?[a-z0-9-]{1,60}\.ingest\.(?:[a-z]{2}\.)?sentry\.io/\d{1,12}",
        0.9,
        "secret",
        1,
        160,
    ),
    SecretSpec(
        "DISCORD_WEBHOOK",
        "discord_webhook",
        ("lit:https://discord",),
        r"https://discord(?:app)?\.com/api/webhooks/\d{5,30}/[A-Za-z0-9_-]{60,80}+",
        0.99,
        None,
    ),
)
