"""Credential detectors: API keys and tokens of AI providers, clouds and developer platforms.

Each entry is data: the entity type, a cheap *trigger* (a literal prefix or keyword the engine
looks for in its single pass), the exact pattern confirmed around the trigger, a score and a
validator that drops placeholders (``sk-...``, ``sk-xxxx``, documented ``…EXAMPLE`` keys) and
low-entropy fillers. Formats follow each vendor's documentation of its key format.
"""

from __future__ import annotations

from dataclasses import dataclass

# Keys are matched by their own boundaries, not "\b": "creds_AKIA….csv", "ghp_…_old" and a key
# right after an escaped newline ("\\nAKIA…" in a JSON or CSV string) are keys. A format with a
# distinctive prefix or a fixed length takes no boundary at all on that side; a short prefix
# ("sk-", "hf_") must not follow a letter or digit, unless that letter ends an escape ("\\n").
# The variable part is possessive ("{32,200}+"): a failed match gives nothing back, so a long
# run of the key's alphabet is read once per trigger, not once per length.
_END = r"(?![A-Za-z0-9_-])"  # a key ends where its alphabet ends
_ALNUM_END = r"(?![A-Za-z0-9])"
_START = r"(?:(?<![A-Za-z0-9_-])|(?<=\\[nrt]))"
_LEFT = r"(?:(?<![A-Za-z0-9])|(?<=\\[nrt]))"
# A private key: its BEGIN line is enough (pasted without its END line, or split over several
# messages); the span runs over the base64 body and the END line when they follow, so that a
# redaction takes the whole key. Escaped line breaks ("\\n") count as line breaks.
_PEM_LABEL = r"(?:[A-Z0-9]+ ){0,4}PRIVATE KEY(?: BLOCK)?"
_PEM_BODY = (
    r"(?:(?:Proc-Type|DEK-Info|Comment|Version):[^\r\n\\]{0,200}|[A-Za-z0-9+/=]+|\s+|\\[rn])*+"
)
# The DER structures private keys start with, in base64: a body pasted without its BEGIN line.
_KEY_BODY_START = (
    r"(?:MII[A-Za-z0-9+/]{3}(?:IBAAK|IBADANBgkqhkiG9w0BAQEFAAS)"
    r"|MIG[A-Za-z0-9+/]AgEAMB[A-Za-z0-9+/]GByqGSM49AgEG|MIGkAgEBBD|MHcCAQEE"
    r"|MC4CAQAwBQYDK2VwBCIEI|b3BlbnNzaC1rZXktdjE)"
)
_KEY_MAX = 200_000  # characters a private key's span may reach (an RSA-16384 PEM is ~13,000)
_KEYWORD_TRIGGERS = tuple(
    "kw:" + w
    for w in (
        "password",
        "passwd",
        "passphrase",
        "pwd",
        "secret",
        "token",
        "apikey",
        "api_key",
        "api-key",
        "access_key",
        "access-key",
        "auth",
        "private_key",
        "credential",
        "bearer",
    )
)
_KEYWORDS = (
    r"(?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|auth[_-]?key|private[_-]?key|client[_-]?secret|credentials?|bearer)"
)


@dataclass(frozen=True, slots=True)
class SecretSpec:
    """One credential format. ``value_group`` names the capture group holding the secret."""

    entity: str
    name: str
    triggers: tuple[str, ...]  # "lit:…" case-sensitive, "kw:…" lowercase literal; see engine
    pattern: str
    score: float = 0.9
    validator: str | None = "secret"
    value_group: int = 0
    right: int = 400  # how far past the trigger the pattern may reach


SECRETS: tuple[SecretSpec, ...] = (
    SecretSpec(
        "ANTHROPIC_API_KEY",
        "anthropic_key",
        ("lit:sk-ant-",),
        r"sk-ant-(?:api|admin|oat|sid)\d{2}-[A-Za-z0-9_-]{80,120}+" + _END,
        0.99,
    ),
    SecretSpec(
        "OPENAI_API_KEY",
        "openai_key",
        ("lit:sk-",),
        _START + r"sk-(?!ant-)(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_-]{32,200}+" + _END,
        0.95,
    ),
    SecretSpec(
        "AWS_ACCESS_KEY_ID",
        "aws_access_key_id",
        ("lit:AKIA", "lit:ASIA", "lit:ABIA", "lit:ACCA", "lit:A3T"),
        r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z2-7]{16}",
        0.95,
    ),
    SecretSpec(
        "AWS_SECRET_ACCESS_KEY",
        "aws_secret_access_key",
        ("kw:aws",),
        r"(?i:aws)(?=[\w.-]{0,30}?(?i:secret|key))[\w.-]{0,80}+[\"']?\s*+[:=>]+\s*+[\"']?"
        r"(?<![A-Za-z0-9/+])([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
        0.95,
        "aws_secret_key",
        1,
        120,
    ),
    SecretSpec("GCP_API_KEY", "gcp_api_key", ("lit:AIza",), r"AIza[0-9A-Za-z_-]{35}", 0.95),
    SecretSpec(
        "GCP_SERVICE_ACCOUNT_KEY",
        "gcp_service_account",
        ('lit:"private_key_id"',),
        r"\"private_key_id\"\s*:\s*\"([a-f0-9]{40})\"",
        0.95,
        None,
        1,
        80,
    ),
    SecretSpec(
        "PRIVATE_KEY",
        "pem_private_key",
        ("lit:-----BEGIN",),
        r"-----BEGIN "
        + _PEM_LABEL
        + r"-----"
        + _PEM_BODY
        + r"(?:-----END "
        + _PEM_LABEL
        + "-----)?",
        1.0,
        None,
        0,
        _KEY_MAX,
    ),
    SecretSpec(
        "PRIVATE_KEY",
        "putty_private_key",
        ("lit:PuTTY-User-Key-File-",),
        r"PuTTY-User-Key-File-\d+: ?[^\r\n\\]{1,100}"
        r"(?:(?:\r?\n|\\r?\\n)(?:[A-Za-z-]{1,40}: ?[^\r\n\\]{0,300}|[A-Za-z0-9+/=]{1,200}))*+",
        1.0,
        None,
        0,
        _KEY_MAX,
    ),
    SecretSpec(
        "PRIVATE_KEY",
        "private_key_body",
        ("lit:MII", "lit:MIG", "lit:MHcCAQEE", "lit:MC4CAQAw", "lit:b3BlbnNzaC1rZXktdjE"),
        r"(?:(?<![A-Za-z0-9+/=])|(?<=\\[nrt]))"
        + _KEY_BODY_START
        + _PEM_BODY
        + r"(?:-----END "
        + _PEM_LABEL
        + "-----)?",
        1.0,
        None,
        0,
        _KEY_MAX,
    ),
    SecretSpec(
        "AZURE_CONNECTION_STRING",
        "azure_connection_string",
        ("lit:DefaultEndpointsProtocol=",),
        r"DefaultEndpointsProtocol=https?;AccountName=[^;\s]+;AccountKey=[A-Za-z0-9+/]{86}==[^\s\"']*",
        0.99,
        None,
        0,
        500,
    ),
    SecretSpec(
        "AZURE_KEY",
        "azure_shared_key",
        ("kw:accountkey=", "kw:sharedaccesskey="),
        r"(?i:AccountKey|SharedAccessKey)=([A-Za-z0-9+/]{40,88}={0,2})",
        0.95,
        "secret",
        1,
        120,
    ),
    SecretSpec(
        "AZURE_KEY",
        "azure_api_key",
        ("kw:azure", "kw:ocp-apim-subscription-key", "kw:api-key"),
        r"(?i:azure|ocp-apim-subscription-key|api-key)[\w.-]{0,80}+[\"']?\s*+[:=]+\s*+"
        r"[\"']?\b([a-f0-9]{32}|[A-Za-z0-9]{84})\b",
        0.85,
        "secret",
        1,
        200,
    ),
    SecretSpec(
        "GITHUB_TOKEN",
        "github_token",
        ("lit:ghp_", "lit:gho_", "lit:ghu_", "lit:ghs_", "lit:ghr_"),
        r"gh[pousr]_[A-Za-z0-9]{36,251}+",
        0.99,
    ),
    SecretSpec(
        "GITHUB_TOKEN",
        "github_pat",
        ("lit:github_pat_",),
        r"github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59}",
        0.99,
    ),
    SecretSpec(
        "GITLAB_TOKEN",
        "gitlab_token",
        ("lit:glpat-", "lit:gldt-", "lit:glrt-", "lit:glptt-", "lit:glcbt-"),
        r"gl(?:pat|dt|rt|ptt|cbt)-[A-Za-z0-9_.-]{20,300}+" + _END,
        0.99,
    ),
    SecretSpec(
        "SLACK_TOKEN",
        "slack_token",
        ("lit:xox", "lit:xapp-"),
        _LEFT + r"(?:xox[abeposr]|xapp)-[A-Za-z0-9-]{10,300}+" + _END,
        0.99,
    ),
    SecretSpec(
        "SLACK_WEBHOOK",
        "slack_webhook",
        ("lit:https://hooks.slack.com/",),
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,200}",
        0.99,
        None,
    ),
    SecretSpec(
        "STRIPE_KEY",
        "stripe_key",
        ("lit:sk_live_", "lit:rk_live_", "lit:sk_test_", "lit:rk_test_"),
        r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,247}+",
        0.95,
    ),
    SecretSpec(
        "STRIPE_KEY",
        "stripe_webhook_secret",
        ("lit:whsec_",),
        r"whsec_[A-Za-z0-9+/]{32,64}+",
        0.95,
    ),
    SecretSpec(
        "HUGGINGFACE_TOKEN",
        "huggingface_token",
        ("lit:hf_",),
        _LEFT + r"hf_[A-Za-z0-9]{30,40}+" + _ALNUM_END,
        0.9,
    ),
    SecretSpec(
        "NPM_TOKEN", "npm_token", ("lit:npm_",), _LEFT + r"npm_[A-Za-z0-9]{36}" + _ALNUM_END, 0.95
    ),
    SecretSpec(
        "NPM_TOKEN",
        "npmrc_auth_token",
        ("lit:_authToken=",),
        r"_authToken=([A-Za-z0-9_.+/=-]{20,200})",  # legacy tokens are UUIDs: no entropy check
        0.95,
        "url_password",
        1,
        220,
    ),
    SecretSpec(
        "SENDGRID_API_KEY",
        "sendgrid_key",
        ("lit:SG.",),
        r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",
        0.99,
    ),
    SecretSpec(
        "TWILIO_API_KEY",
        "twilio_api_key",
        ("lit:SK",),
        _LEFT + r"SK[0-9a-f]{32}" + _ALNUM_END,
        0.85,
    ),
    SecretSpec(
        "GOOGLE_OAUTH_TOKEN",
        "google_oauth_access_token",
        ("lit:ya29.",),
        r"ya29\.[0-9A-Za-z_-]{20,2000}+" + _END,
        0.95,
    ),
    SecretSpec(
        "GOOGLE_OAUTH_TOKEN",
        "google_oauth_client_secret",
        ("lit:GOCSPX-",),
        r"GOCSPX-[A-Za-z0-9_-]{28}",
        0.99,
    ),
    SecretSpec(
        "GOOGLE_OAUTH_TOKEN",
        "google_oauth_refresh_token",
        ("lit:1//0",),
        _LEFT + r"1//0[A-Za-z0-9_-]{40,500}+" + _END,
        0.85,
    ),
    SecretSpec(
        "GROQ_API_KEY",
        "groq_key",
        ("lit:gsk_",),
        _LEFT + r"gsk_[A-Za-z0-9]{48,56}+" + _ALNUM_END,
        0.95,
    ),
    SecretSpec(
        "XAI_API_KEY",
        "xai_key",
        ("lit:xai-",),
        _LEFT + r"xai-[A-Za-z0-9]{70,90}+" + _ALNUM_END,
        0.95,
    ),
    SecretSpec(
        "REPLICATE_API_TOKEN",
        "replicate_token",
        ("lit:r8_",),
        _LEFT + r"r8_[A-Za-z0-9]{37}" + _ALNUM_END,
        0.95,
    ),
    SecretSpec(
        "DIGITALOCEAN_TOKEN",
        "digitalocean_token",
        ("lit:dop_v1_", "lit:doo_v1_", "lit:dor_v1_"),
        r"do[opr]_v1_[a-f0-9]{64}",
        0.99,
    ),
    SecretSpec(
        "SHOPIFY_TOKEN",
        "shopify_token",
        ("lit:shpat_", "lit:shpss_", "lit:shpca_", "lit:shppa_"),
        r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}",
        0.99,
    ),
    SecretSpec(
        "PYPI_TOKEN",
        "pypi_token",
        ("lit:pypi-AgE",),
        r"pypi-AgE[A-Za-z0-9_-]{50,400}+" + _END,
        0.99,
    ),
    SecretSpec(
        "DATABRICKS_TOKEN",
        "databricks_token",
        ("lit:dapi",),
        _LEFT + r"dapi[a-f0-9]{32}(?:-\d)?" + _ALNUM_END,
        0.9,
    ),
    SecretSpec(
        "ATLASSIAN_TOKEN",
        "atlassian_token",
        ("lit:ATATT3",),
        r"ATATT3[A-Za-z0-9_=-]{150,250}+",
        0.95,
    ),
    SecretSpec(
        "AZURE_KEY",
        "azure_sas_signature",
        ("lit:sig=",),
        r"(?<=[?&])sig=((?:[A-Za-z0-9+/]|%2[BbFf]){40,120}(?:=|%3[Dd]){0,2})",
        0.9,
        "secret",
        1,
        140,
    ),
    SecretSpec(
        "CONNECTION_STRING",
        "connection_string_password",
        ("kw:password=", "kw:pwd="),
        # ADO.NET / ODBC ("...;Password=x;") and URL queries ("?user=a&password=x"); not a
        # keyword argument in code ("connect(password=db_password)").
        r"(?<=[;?&])(?i:password|pwd)=([^;&\s\"']{3,200})",
        0.9,
        "url_password",
        1,
        220,
    ),
    SecretSpec(
        "JWT",
        "jwt",
        ("lit:eyJ",),
        _START
        + r"eyJ[A-Za-z0-9_-]{8,4000}+\.eyJ[A-Za-z0-9_-]{8,4000}+\.[A-Za-z0-9_-]{10,4000}+"
        + _END,
        0.9,
        "jwt",
        0,
        8000,
    ),
    SecretSpec(
        "DATABASE_URL",
        "database_url",
        ("lit:://",),
        r"\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver"
        r"|oracle|clickhouse|cockroachdb|jdbc:[a-z]+)://[^\s:/@\"']*:([^\s@/\"']{3,})@[^\s/\"']+",
        0.95,
        "url_password",
        1,
        300,
    ),
    SecretSpec(
        "URL_CREDENTIALS",
        "url_credentials",
        ("lit:://",),
        r"\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@\"']+:([^\s@/\"']{3,})@[^\s/\"']+",
        0.9,
        "url_password",
        1,
        300,
    ),
    SecretSpec(
        "GENERIC_SECRET",
        "keyword_secret",
        _KEYWORD_TRIGGERS,
        r"(?i:"
        + _KEYWORDS
        + r")[\w.-]{0,20}[\"']?(?:\s*(?:[:=]|=>)|\s+(?:is|was)|(?<=[Bb]earer))\s*[\"'`]?"
        r"([^\s\"'`,;<>]{12,200})",
        0.8,
        "keyword_secret",  # registered by tollhouse.dlp.secret_files: high_entropy, no paths
        1,
        260,
    ),
)
"""The default credential detectors, in priority order for equal scores."""

# Config files, CLI transcripts and developer tools' tokens live next door (one module each
# stays readable); they need SecretSpec, defined above, hence the import at the end.
from tollhouse.dlp.secret_files import CONFIG_SECRETS, TOOL_SECRETS  # noqa: E402

SECRETS = SECRETS + CONFIG_SECRETS + TOOL_SECRETS
