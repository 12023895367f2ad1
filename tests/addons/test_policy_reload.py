"""Policy files in a running gateway: a bad file refuses a start with file:line, and on reload the
stage keeps its last good policy rather than running without one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mitmproxy.test import taddons

from addons.dlp import Dlp
from addons.injection import Injection
from addons.meter import Meter
from addons.scope import Scope

RULES = Path(__file__).resolve().parents[2] / "rules"

BAD = {
    "dlp.yaml": (
        "policies:\n  standard:\n    actions:\n      EMAIL_ADDRESS: vaporize\n",
        "dlp.yaml:4",
    ),
    "injection.yaml": ("rules:\n  - id: x\n    weight: 7\n", "injection.yaml:"),
    "prices.yaml": (
        "models:\n  - model: m\n    input_per_mtok: -1\n    output_per_mtok: 1\n",
        "prices.yaml:3",
    ),
}


def bad_rules(tmp_path: Path, name: str) -> Path:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / name).write_text(BAD[name][0])
    return rules


@pytest.mark.parametrize(
    ("stage", "name"), [(Dlp, "dlp.yaml"), (Injection, "injection.yaml"), (Meter, "prices.yaml")]
)
def test_a_bad_policy_refuses_to_start_naming_file_and_line(tmp_path, stage, name):
    addon = stage()
    with taddons.context(Scope(), addon) as tctx, pytest.raises(Exception, match=BAD[name][1]):
        tctx.options.update(
            tollhouse_rules=str(bad_rules(tmp_path, name)), tollhouse_data=str(tmp_path)
        )


@pytest.mark.parametrize(
    ("stage", "name", "attribute"),
    [
        (Dlp, "dlp.yaml", "scanner"),
        (Injection, "injection.yaml", "scanner"),
        (Meter, "prices.yaml", "prices"),
    ],
)
def test_a_bad_policy_on_reload_keeps_the_last_good_one(tmp_path, stage, name, attribute):
    addon = stage()
    with taddons.context(Scope(), addon) as tctx:
        tctx.options.update(tollhouse_rules=str(RULES), tollhouse_data=str(tmp_path))
        good = getattr(addon, attribute)
        assert good is not None
        tctx.options.update(tollhouse_rules=str(bad_rules(tmp_path, name)))
        assert getattr(addon, attribute) is good
