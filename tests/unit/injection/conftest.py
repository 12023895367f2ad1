"""Shared fixtures: the shipped rule pack, loaded and compiled once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tollhouse.injection import InjectionScanner, load_injection_policy

RULES = Path(__file__).resolve().parents[3] / "rules" / "injection.yaml"


@pytest.fixture(scope="session")
def scanner() -> InjectionScanner:
    return InjectionScanner(load_injection_policy(RULES))
