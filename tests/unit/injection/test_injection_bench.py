"""The benchmark's detection figures meet the issue's targets (skipped without ../shared/eval)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tollhouse.injection import InjectionScanner

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "bench_injection.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_injection", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_injection", module)
    spec.loader.exec_module(module)
    return module


def test_detection_targets(scanner: InjectionScanner) -> None:
    bench = _bench()
    sets = bench.load_sets(bench.DEFAULT_EVAL)
    if sets is None:
        pytest.skip(f"eval data not found under {bench.DEFAULT_EVAL}")
    figures = bench.detection(scanner, *sets)
    assert figures["deepset_all"]["tpr"] >= 0.75, figures["deepset_all"]
    assert figures["deepset_all"]["fpr"] <= 0.02, figures["deepset_all"]
    assert figures["notinject"]["fpr"] <= 0.02, figures["notinject"]


def test_jailbreak_holdout_target(scanner: InjectionScanner) -> None:
    bench = _bench()
    prompts = bench.load_jailbreaks(bench.DEFAULT_EVAL)
    if prompts is None:
        pytest.skip(f"eval data not found under {bench.DEFAULT_EVAL}")
    figures = bench.jailbreak_detection(scanner, prompts)
    # Measured on the held-out part (every 4th row), which no rule was tuned on.
    assert figures["jailbreak_holdout"]["detected"] >= 0.85, figures["jailbreak_holdout"]
    assert figures["jailbreak_dev"]["detected"] >= 0.85, figures["jailbreak_dev"]


def test_families_cover_every_set(scanner: InjectionScanner) -> None:
    bench = _bench()
    sets = bench.load_sets(bench.DEFAULT_EVAL)
    prompts = bench.load_jailbreaks(bench.DEFAULT_EVAL)
    if sets is None or prompts is None:
        pytest.skip(f"eval data not found under {bench.DEFAULT_EVAL}")
    fams = bench.families(scanner, sets, prompts)
    assert set(fams) == {"deepset_injections", "deepset_benign", "notinject", "jailbreak"}
    assert fams["jailbreak"]["jailbreak_persona"]["detected"] > 0
