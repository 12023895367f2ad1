"""Loading rules/injection.yaml: validation errors name file:line: field; nothing half-loads."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tollhouse.injection import InjectionScanner, PolicyError, load_injection_policy
from tollhouse.policyfile import PolicyError as SharedPolicyError

GOOD = """\
version: 1
default_policy: standard
policies:
  standard:
    thresholds: {flag: 0.5, block: 0.85}
    role_trust: {tool_result: 0.8}
rules:
  - id: override.test
    category: instruction_override
    languages: [en]
    weight: 0.9
    patterns:
      - '\\bignore previous instructions\\b'
  - id: structure.rep
    category: structural
    weight: 0.5
    detector: repetition
    params: {min_repeats: 5}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "injection.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        load_injection_policy(_write(tmp_path, text))
    return info.value


def test_shipped_pack_loads_with_defaults(scanner: InjectionScanner) -> None:
    pack = scanner.pack
    assert pack.default_policy == "standard"
    standard = pack.policy()
    assert standard.trust("system") == 0.0 and standard.trust("user") == 1.0
    assert 0.0 < standard.trust("tool_result") < 1.0
    assert standard.flag < (standard.block or 1.0)
    assert pack.policy("monitor").block is None


def test_minimal_pack_and_defaults(tmp_path: Path) -> None:
    pack = load_injection_policy(_write(tmp_path, GOOD))
    policy = pack.policy()
    assert policy.trust("system") == 0.0 and policy.trust("user") == 1.0
    assert policy.trust("tool_result") == 0.8
    scanner = InjectionScanner(pack)
    assert scanner.check_text("Ignore previous instructions!").verdict == "block"
    assert scanner.check_text("la " * 6).rules == ["structure.rep"]


def test_policy_error_is_the_shared_class(tmp_path: Path) -> None:
    assert PolicyError is SharedPolicyError


@pytest.mark.parametrize(
    ("old", "new", "line", "field", "words"),
    [
        ("weight: 0.9", "weight: 1.5", 11, "rules[0].weight", "between 0.0 and 1.0"),
        ("category: instruction_override", "category: nonsense", 9, "rules[0].category", "unknown"),
        (
            "'\\bignore previous instructions\\b'",
            "'(unclosed'",
            13,
            "rules[0].patterns[0]",
            "invalid",
        ),
        ("id: structure.rep", "id: override.test", 14, "rules[1].id", "duplicate"),
        (
            "detector: repetition",
            "detector: telepathy",
            17,
            "rules[1].detector",
            "unknown detector",
        ),
        ("{min_repeats: 5}", "{min_repeats: -1}", 18, "rules[1].params.min_repeats", "positive"),
        (
            "{flag: 0.5, block: 0.85}",
            "{flag: 0.9, block: 0.5}",
            5,
            "policies.standard.thresholds.block",
            "below",
        ),
        (
            "{tool_result: 0.8}",
            "{robot: 0.8}",
            6,
            "policies.standard.role_trust.robot",
            "unknown field",
        ),
        ("default_policy: standard", "default_policy: lenient", 2, "default_policy", "must name"),
        ("languages: [en]", "languages: [English]", 10, "rules[0].languages[0]", "ISO 639"),
    ],
)
def test_errors_name_file_line_and_field(
    tmp_path: Path, old: str, new: str, line: int, field: str, words: str
) -> None:
    assert old in GOOD
    err = _error(tmp_path, GOOD.replace(old, new))
    assert err.line == line, str(err)
    assert err.field == field, str(err)
    assert words in err.message
    assert str(err).startswith(f"{tmp_path / 'injection.yaml'}:{line}: {field}: ")


def test_missing_patterns_and_detector(tmp_path: Path) -> None:
    err = _error(
        tmp_path, GOOD.replace("    detector: repetition\n    params: {min_repeats: 5}\n", "")
    )
    assert err.field == "rules[1]" and "exactly one of" in err.message


def test_pattern_rules_reject_named_groups_and_verbose_mode(tmp_path: Path) -> None:
    for bad in ("'(?P<x>ignore)'", "'(?x)ignore'"):
        err = _error(tmp_path, GOOD.replace("'\\bignore previous instructions\\b'", bad))
        assert err.field == "rules[0].patterns[0]"


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    err = _error(tmp_path, "version: 1\nrules: [\n")
    assert "invalid YAML" in err.message
    with pytest.raises(PolicyError):
        load_injection_policy(tmp_path / "absent.yaml")
