"""`tollhouse check`: every policy file validated at once, as a gateway would load it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tollhouse.cli import main

RULES = Path(__file__).resolve().parents[2] / "rules"


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    copy = tmp_path / "rules"
    shutil.copytree(RULES, copy)
    return copy


def test_the_shipped_rules_are_valid(capsys):
    assert main(["check", "--rules", str(RULES)]) == 0
    out = capsys.readouterr().out
    for name in ("hosts", "dlp", "injection", "identities", "budgets", "prices"):
        assert f"ok     {RULES / name}.yaml" in out


def test_a_bad_file_is_named_with_its_line_and_the_others_still_checked(rules, capsys):
    text = (rules / "dlp.yaml").read_text().replace("default: redact", "default: vaporize", 1)
    (rules / "dlp.yaml").write_text(text)
    line = text.splitlines().index(next(x for x in text.splitlines() if "vaporize" in x)) + 1
    assert main(["check", "--rules", str(rules)]) == 1
    captured = capsys.readouterr()
    assert f"dlp.yaml:{line}: policies.standard.actions.default" in captured.out
    assert f"ok     {rules / 'injection.yaml'}" in captured.out


def test_optional_files_may_be_absent_but_required_ones_not(rules, capsys):
    (rules / "budgets.yaml").unlink()
    (rules / "injection.yaml").unlink()
    assert main(["check", "--rules", str(rules), "--json"]) == 1
    states = {
        Path(r["file"]).name: r["state"]
        for r in map(json.loads, capsys.readouterr().out.splitlines())
    }
    assert states["budgets.yaml"] == "absent"
    assert states["injection.yaml"] == "error"


def test_a_bound_policy_name_no_stage_defines_is_reported(rules, capsys):
    text = (rules / "identities.yaml").read_text()
    text = text.replace("policies: [standard, strict, monitor]", "policies: [standard, stirct]")
    (rules / "identities.yaml").write_text(text)
    assert main(["check", "--rules", str(rules)]) == 1
    assert "stirct defined neither in dlp.yaml nor in injection.yaml" in capsys.readouterr().out


def test_run_refuses_to_start_on_a_bad_file_with_one_line(rules, tmp_path, capsys):
    (rules / "injection.yaml").write_text("rules: [\n")
    code = main(
        [
            "run",
            "--rules",
            str(rules),
            "--data",
            str(tmp_path / "d"),
            "--certs",
            str(tmp_path / "c"),
            "--port",
            "0",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("tollhouse run: ") and "injection.yaml:" in err
    assert "Traceback" not in err
    assert not (tmp_path / "c").exists()  # nothing was set up
