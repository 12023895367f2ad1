"""Policy loading: the shipped file is valid, bad files fail with file:line:field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tollhouse.dlp import PolicyError, load_dlp_policy

ROOT = Path(__file__).resolve().parents[3]

GOOD = """\
version: 1
policies:
  standard:
    actions:
      default: redact
"""


def test_shipped_policy_loads() -> None:
    policy = load_dlp_policy(ROOT / "rules" / "dlp.yaml")
    assert policy.default_policy == "standard"
    assert policy.policy("engineering").action_for("IP_ADDRESS", "pii").action == "redact"
    assert policy.policy("engineering").action_for("GITHUB_TOKEN", "secret").action == "redact"
    assert policy.policy("engineering").action_for("PRIVATE_KEY", "secret").action == "block"
    assert policy.policy().action_for("EMAIL_ADDRESS", "pii").restore


def test_minimal_policy(tmp_path: Path) -> None:
    (tmp_path / "dlp.yaml").write_text(GOOD)
    assert load_dlp_policy(tmp_path / "dlp.yaml").policy().action_for("X", "pii").action == "redact"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (
            GOOD.replace("default: redact", "default: redcat"),
            ":5: policies.standard.actions.default",
        ),
        (GOOD + "min_score: 3\n", ":6: min_score"),
        (
            GOOD + "custom_entities:\n  - name: EMP\n    patterns:\n      - regex: 'EMP-(\\d'\n",
            ":9: custom_entities[0].patterns[0].regex",
        ),
        (
            GOOD + "custom_entities:\n  - name: EMP\n    validator: nope\n    deny_list: [a]\n",
            ":8: custom_entities[0].validator",
        ),
        (GOOD.replace("default: redact", "EMAIL: redact"), ":5: policies.standard.actions.EMAIL"),
        (
            GOOD.replace("    actions:", "    attachments: shred\n    actions:"),
            ":4: policies.standard.attachments",
        ),
        (GOOD + "detect:\n  pii: [EMAIL_ADDRESS, SHOE_SIZE]\n", ":7: detect.pii[1]"),
        (GOOD + "detect:\n  national_ids: [MarsIdRecognizer]\n", ":7: detect.national_ids[0]"),
        (GOOD + "polices: {}\n", ":6: polices"),
        (
            GOOD.replace("default: redact", "default: {action: mask, restore: true}"),
            ":5: policies.standard.actions.default.restore",
        ),
        (GOOD + "  other:\n    extends: missing\n", ":7: policies.other.extends"),
        ("policies: [\n", ":2"),
    ],
)
def test_errors_name_file_line_field(tmp_path: Path, body: str, where: str) -> None:
    path = tmp_path / "dlp.yaml"
    path.write_text(body)
    with pytest.raises(PolicyError) as info:
        load_dlp_policy(path)
    assert str(info.value).startswith(f"{path}{where}"), str(info.value)


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError):
        load_dlp_policy(tmp_path / "absent.yaml")
