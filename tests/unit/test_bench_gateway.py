"""scripts/bench_gateway.py runs end to end (its own fake provider and gateway) and prints a row
for every shape and mode. No timing is asserted: performance lives in the script's output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench_gateway.py"
SHAPES = {
    "openai-1k": ["response"],
    "openai-50k": ["response"],
    "openai-stream": ["first byte", "last byte"],
    "anthropic": ["response"],
}


@pytest.mark.timeout(150)
def test_quick_run_prints_every_shape_and_mode() -> None:
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--quick", "--requests", "5", "--concurrency", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: the script stops its gateway and fake provider
        stdout, stderr = proc.communicate(timeout=30)
        pytest.fail(f"bench_gateway.py took over 120 s:\n{stdout}{stderr}")
    assert proc.returncode == 0, stdout + stderr
    rows = [line.split() for line in stdout.splitlines()]
    for shape, measures in SHAPES.items():
        for measure in measures:
            for mode in ("sequential", "concurrent"):
                expected = [shape, *measure.split(), mode]
                assert any(row[: len(expected)] == expected for row in rows), (
                    f"no row for {shape} {measure} {mode}:\n{stdout}"
                )
    assert "gateway peak RSS (VmHWM):" in stdout
