#!/usr/bin/env python3
"""Measure the injection rules: detection rates on public eval sets and latency per prompt.

    .venv/bin/python scripts/bench_injection.py [--eval-dir DIR] [--rules rules/injection.yaml]
                                                [--policy NAME] [--json] [--misses]

Detected means the verdict under the policy's default thresholds is ``flag`` or ``block``
(both get a mark in the audit log; ``allow`` is a miss). Reported:

* deepset (``injection/deepset_train.jsonl``, label 1 = injection): TPR on injections, FPR on
  benign rows, for all rows and for two halves (even ids = development, odd ids = held out);
* NotInject (``injection/notinject_one.json``, all benign, full of trigger words): FPR;
* latency of ``check_text`` on 1 KB and 10 KB prompts (median, p99).

The data is read from ``../shared/eval`` (never copied into the project); when it is missing the
rates are skipped with a message and only latency is measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tollhouse.injection import InjectionScanner, load_injection_policy  # noqa: E402

DEFAULT_EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
DETECTED = ("flag", "block")

# Benign filler for latency prompts: ordinary prose with a few trigger words in harmless use.
_FILLER = (
    "Please summarize the quarterly report below for the leadership team. Revenue grew by "
    "twelve percent, driven by the new subscription tier; costs rose because of cloud spend. "
    "Ignore rounding differences under one percent. The system migration finished in March and "
    "the previous vendor contract ends in June. Highlight risks, open questions and next steps. "
)


def _rate(hits: int, total: int) -> float:
    return hits / total if total else 0.0


def load_sets(eval_dir: Path) -> tuple[list[dict[str, Any]], list[str]] | None:
    """(deepset rows, NotInject prompts), or None when either file is missing."""
    deepset = eval_dir / "injection" / "deepset_train.jsonl"
    notinject = eval_dir / "injection" / "notinject_one.json"
    if not deepset.is_file() or not notinject.is_file():
        return None
    rows = [json.loads(line) for line in deepset.read_text(encoding="utf-8").splitlines() if line]
    prompts = [item["prompt"] for item in json.loads(notinject.read_text(encoding="utf-8"))]
    return rows, prompts


def detection(
    scanner: InjectionScanner,
    rows: list[dict[str, Any]],
    prompts: list[str],
    policy: str | None = None,
) -> dict[str, Any]:
    """TPR/FPR figures; ``misses`` and ``false_positives`` list row ids for inspection."""
    out: dict[str, Any] = {}
    misses: list[str] = []
    fps: list[str] = []
    halves: dict[str, list[int]] = {
        "all": [0, 0, 0, 0],
        "dev": [0, 0, 0, 0],
        "holdout": [0, 0, 0, 0],
    }
    for row in rows:
        detected = scanner.check_text(row["text"], policy).verdict in DETECTED
        half = "dev" if int(str(row["id"]).rsplit("-", 1)[-1]) % 2 == 0 else "holdout"
        for key in ("all", half):
            tp, pos, fp, neg = halves[key]
            if row["label"] == 1:
                halves[key] = [tp + detected, pos + 1, fp, neg]
            else:
                halves[key] = [tp, pos, fp + detected, neg + 1]
        if row["label"] == 1 and not detected:
            misses.append(row["id"])
        if row["label"] == 0 and detected:
            fps.append(row["id"])
    for key, (tp, pos, fp, neg) in halves.items():
        out[f"deepset_{key}"] = {
            "tpr": _rate(tp, pos),
            "fpr": _rate(fp, neg),
            "injections": pos,
            "benign": neg,
        }
    ni_fp = [i for i, p in enumerate(prompts) if scanner.check_text(p, policy).verdict in DETECTED]
    out["notinject"] = {"fpr": _rate(len(ni_fp), len(prompts)), "benign": len(prompts)}
    out["misses"], out["false_positives"], out["notinject_fp"] = misses, fps, ni_fp
    return out


def latency(scanner: InjectionScanner, size: int, runs: int = 300) -> dict[str, float]:
    """Median and p99 of ``check_text`` in milliseconds for a benign prompt of ``size`` bytes."""
    text = (_FILLER * (size // len(_FILLER) + 1))[:size]
    scanner.check_text(text)  # warm caches (fold tables, regex caches)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        scanner.check_text(text)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "median_ms": statistics.median(samples),
        "p99_ms": samples[int(len(samples) * 0.99) - 1],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--rules", type=Path, default=ROOT / "rules" / "injection.yaml")
    parser.add_argument("--policy", default=None, help="named policy (default: the pack's)")
    parser.add_argument("--json", action="store_true", help="print figures as JSON")
    parser.add_argument("--misses", action="store_true", help="list missed and false-positive rows")
    args = parser.parse_args(argv)

    scanner = InjectionScanner(load_injection_policy(args.rules))
    policy = scanner.pack.policy(args.policy)
    report: dict[str, Any] = {
        "policy": policy.name,
        "detected_verdicts": list(DETECTED),
        "thresholds": {"flag": policy.flag, "block": policy.block},
    }
    sets = load_sets(args.eval_dir)
    if sets is None:
        print(
            f"eval data not found under {args.eval_dir}; skipping detection rates", file=sys.stderr
        )
    else:
        report.update(detection(scanner, *sets, policy=args.policy))
    report["latency_1kb"] = latency(scanner, 1024)
    report["latency_10kb"] = latency(scanner, 10 * 1024)

    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"policy {policy.name}: flag >= {policy.flag}, block >= {policy.block}; "
        f"detected = {' or '.join(DETECTED)}"
    )
    for key in ("deepset_all", "deepset_dev", "deepset_holdout"):
        if key in report:
            r = report[key]
            print(
                f"{key:16} TPR {r['tpr']:.3f} ({r['injections']} injections)  "
                f"FPR {r['fpr']:.3f} ({r['benign']} benign)"
            )
    if "notinject" in report:
        ni = report["notinject"]
        print(f"{'notinject':16} FPR {ni['fpr']:.3f} ({ni['benign']} benign)")
    for key in ("latency_1kb", "latency_10kb"):
        r = report[key]
        print(f"{key:16} median {r['median_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms")
    if args.misses and sets is not None:
        print("missed:", " ".join(report["misses"]))
        print("false positives:", " ".join(report["false_positives"]), report["notinject_fp"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
