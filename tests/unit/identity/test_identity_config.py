"""identities.yaml is validated on load; every mistake names file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tollhouse.identity import Identifier, Mode, load_identities
from tollhouse.policyfile import PolicyError

RULES = Path(__file__).resolve().parents[3] / "rules"


def test_shipped_identities_file_loads_in_monitor_mode():
    config = load_identities(RULES / "identities.yaml")
    assert config.mode == Mode.MONITOR and not config.proxy_auth
    assert {"standard", "strict", "monitor"} <= config.policies


def test_the_test_setup_loads(material):
    config = load_identities(material.rules / "identities.yaml")
    assert config.basic is not None and config.jwt is not None
    assert config.bindings[("team:support", "support-bot")] == "standard"
    assert len(config.keys) == 1


BASE = "version: 1\npolicies: [standard]\nteams: [support]\n"


CASES = {
    "mode": ("mode: strictest\n", 4, "mode", "enforce"),
    "unknown-key": ("colour: blue\n", 4, "colour", "unknown key"),
    "cidr": ("networks:\n  - {cidr: 10.0.0.1/8}\n", 5, "networks[0].cidr", "not a network"),
    "team": (
        "networks:\n  - {cidr: 10.0.0.0/8, team: sales}\n",
        5,
        "networks[0].team",
        "unknown team",
    ),
    "raw-key": (
        "applications:\n  - name: bot\n    keys: [sk-live-abcdef]\n",
        6,
        "applications[0].keys[0]",
        "never the key itself",
    ),
    "policy": (
        "applications:\n  - {name: bot}\n"
        "bindings:\n  - {who: [team:support], apps: [bot], policy: lax}\n",
        7,
        "bindings[0].policy",
        "standard",
    ),
    "app": (
        "bindings:\n  - {who: [team:support], apps: [ghost], policy: standard}\n",
        5,
        "bindings[0].apps[0]",
        "unknown application",
    ),
    "who": (
        "bindings:\n  - {who: [group:x], apps: ['*'], policy: standard}\n",
        5,
        "bindings[0].who[0]",
        "user:ID",
    ),
    "duplicate": (
        "bindings:\n  - {who: ['*'], apps: ['*'], policy: standard}\n"
        "  - {who: ['*'], apps: ['*'], policy: standard}\n",
        6,
        "bindings[1].who[0]",
        "already bound",
    ),
    "alg-none": (
        "proxy_auth:\n  jwt: {jwks: j.json, issuer: i, audience: a, algorithms: [none]}\n",
        5,
        "proxy_auth.jwt.algorithms[0]",
        "RS256",
    ),
    "header": ("app_header: 'X Bad Header'\n", 4, "app_header", "header name"),
}


@pytest.mark.parametrize(("text", "line", "field", "words"), CASES.values(), ids=CASES.keys())
def test_mistakes_name_file_line_and_field(tmp_path, text, line, field, words):
    path = tmp_path / "identities.yaml"
    path.write_text(BASE + text)
    with pytest.raises(PolicyError) as err:
        load_identities(path)
    assert (err.value.line, err.value.field) == (line, field), str(err.value)
    assert words in err.value.message
    assert str(err.value).startswith(f"{path}:{line}: {field}: ")


def test_credentials_file_errors_never_quote_the_line(tmp_path):
    (tmp_path / "identities.yaml").write_text(BASE + "proxy_auth:\n  basic: {credentials: c.txt}\n")
    (tmp_path / "c.txt").write_text("# ok\nalice:plaintext-password\n")
    with pytest.raises(PolicyError) as err:
        Identifier.load(tmp_path / "identities.yaml", tmp_path)
    assert err.value.line == 2 and "plaintext-password" not in str(err.value)


def test_missing_jwks_is_reported(tmp_path):
    (tmp_path / "identities.yaml").write_text(
        BASE + "proxy_auth:\n  jwt: {jwks: nowhere.json, issuer: i, audience: a}\n"
    )
    with pytest.raises(PolicyError, match=r"nowhere\.json: cannot read"):
        Identifier.load(tmp_path / "identities.yaml", tmp_path)
