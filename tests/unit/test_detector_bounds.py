"""Every detector runs in time linear in its input, and never holds the GIL for long.

Each DLP rule and each injection rule is fed long repetitions of its own trigger words and of
the characters its patterns are made of, at two sizes (N and 4N): linear work takes about 4x
as long, quadratic work 16x. Then a few shapes a user really pastes (a table of numbers, digits
with separators, spaced digits, a base64 blob) are scanned at a larger size while a heartbeat
thread measures the longest time it waited for the GIL: one long regex call shows up there,
and on a gateway it is how long every other client waits.
"""

from __future__ import annotations

import gc
import random
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tollhouse.dlp import DlpScanner, load_dlp_policy
from tollhouse.injection import InjectionScanner, load_injection_policy

ROOT = Path(__file__).resolve().parents[2]
N = 1_000
MAX_RATIO = 10.0  # 4x input: ~4x time when linear, 16x when quadratic; noise needs room
MIN_SECONDS = 0.003  # below this at 4N, a ratio measures noise, not growth
# Linear is not enough if the constant is huge (a rule that reads 1,000 characters at each of
# its triggers): past this, a megabyte of the same takes more than ~30 s of CPU.
MAX_US_PER_CHAR = 30.0
# What follows a trigger: nothing, a separator, the characters keys and numbers are made of.
TAILS = ("", " ", "=", "1", "a", "-", ".", "\\n")
FEW_TAILS = ("", " ")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]{2,}|[-=@:/+._#<>|]{2,}")


@pytest.fixture(scope="module")
def dlp() -> DlpScanner:
    return DlpScanner(load_dlp_policy(ROOT / "rules" / "dlp.yaml"))


@pytest.fixture(scope="module")
def injection() -> InjectionScanner:
    return InjectionScanner(load_injection_policy(ROOT / "rules" / "injection.yaml"))


def _repeat(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def _units(trigger_words: set[str], sources: list[str]) -> set[str]:
    """A rule's trigger words with each tail, and the first literal words of its patterns."""
    units = {w + tail for w in trigger_words if w for tail in TAILS}
    for source in sources:
        units.update(w + tail for w in _WORD.findall(source)[:3] for tail in FEW_TAILS)
    return units


def dlp_units(scanner: DlpScanner) -> set[str]:
    units: set[str] = set()
    for rule in scanner.detector.rules:
        triggers = {t.partition(":")[2] for t in rule.triggers if not t.startswith("re:")}
        units |= _units(triggers, [p.pattern for p, _ in rule.patterns])
    # What the regex triggers match: digits with each separator, long tokens.
    units |= {"1" + sep for sep in " -./()"} | {"12" + sep for sep in " -./()"}
    units |= {"aB3+/" * 6, "1 ", "12:", "ab:", "::", "1.1.", "a@b.", "+1 "}
    return units


def injection_units(scanner: InjectionScanner) -> set[str]:
    units: set[str] = set()
    for rule in scanner.pack.rules:
        units |= _units(set(), list(rule.patterns))
    units |= {"a ", "1 ", "i g n o r e ", "\n", " \n", "aGVsbG8=", "\\x41", "-", "="}
    return units


def _seconds(fn: Callable[[], object], runs: int = 1) -> float:
    """CPU seconds of the best of ``runs`` calls: other processes on a shared machine do not
    count, as they would in wall-clock time."""
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def _superlinear(scan: Callable[[str], object], units: set[str]) -> Iterator[str]:
    """Units whose repetition costs more than linear time (measured twice before blaming)."""
    for unit in sorted(units):
        small, large = _repeat(unit, N), _repeat(unit, 4 * N)
        for attempt in (1, 3):
            t_large = _seconds(lambda text=large: scan(text), attempt)
            if t_large < MIN_SECONDS:
                break
            ratio = t_large / max(_seconds(lambda text=small: scan(text), attempt), 1e-4)
            if ratio <= MAX_RATIO and t_large / len(large) * 1e6 <= MAX_US_PER_CHAR:
                break
        else:
            yield f"{unit!r}: x{ratio:.1f} for 4x the input ({t_large * 1000:.0f} ms)"


def test_every_dlp_rule_is_linear_in_repetitions_of_its_triggers(dlp):
    slow = list(_superlinear(dlp.detector.detect, dlp_units(dlp)))
    assert not slow, "super-linear DLP inputs:\n" + "\n".join(slow)


def test_every_injection_rule_is_linear_in_repetitions_of_its_words(injection):
    slow = list(_superlinear(injection.check_text, injection_units(injection)))
    assert not slow, "super-linear injection inputs:\n" + "\n".join(slow)


# --- the longest single hold of the GIL ----------------------------------------------------


def _longest_gil_wait(fn: Callable[[], object]) -> float:
    """Run ``fn`` while a thread wakes every half millisecond; its longest wait, in seconds."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(0.001)
    # A full garbage collection also holds the GIL (tens of ms with many objects alive); that
    # is the process's business, not a detector's, so it is kept out of this measurement.
    gc.collect()
    gc.disable()
    stop = threading.Event()
    longest = [0.0]

    def heartbeat() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.0005)
            now = time.perf_counter()
            longest[0] = max(longest[0], now - last)
            last = now

    beat = threading.Thread(target=heartbeat)
    beat.start()
    try:
        time.sleep(0.005)
        fn()
    finally:
        stop.set()
        beat.join()
        gc.enable()
        sys.setswitchinterval(previous)
    return longest[0]


def _shapes(size: int) -> dict[str, str]:
    rng = random.Random(14)
    table = "".join(
        " ".join(str(rng.randint(0, 99_999)) for _ in range(10)) + "\n" for _ in range(size // 50)
    )
    return {
        "table of numbers": table[:size],
        "spaced digits": "".join(f"{rng.randint(0, 9)} " for _ in range(size // 2)),
        "digits with dots": _repeat("1.", size),
        "base64 blob": "".join(rng.choice("ABCDEFabcdef0123+/") for _ in range(size)),
        "one long line": _repeat("x", size),
    }


@pytest.mark.parametrize("shape", list(_shapes(10)))
def test_no_scan_holds_the_gil_for_long(dlp, injection, shape):
    text = _shapes(300_000)[shape]
    for name, scan in (("dlp", dlp.detector.detect), ("injection", injection.check_text)):
        wait = _longest_gil_wait(lambda scan=scan: scan(text))
        # A switch interval is 1 ms here; a wait of 50 ms means one C call ran that long.
        assert wait < 0.050, f"{name} held the GIL for {wait * 1000:.0f} ms on {shape}"
