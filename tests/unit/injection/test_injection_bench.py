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
    assert figures["deepset_all"]["tpr"] >= 0.60, figures["deepset_all"]
    assert figures["deepset_all"]["fpr"] <= 0.03, figures["deepset_all"]
    assert figures["notinject"]["fpr"] <= 0.03, figures["notinject"]
