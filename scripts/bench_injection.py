#!/usr/bin/env python3
"""Measure the injection rules: detection rates on public eval sets and latency per prompt.

    .venv/bin/python scripts/bench_injection.py [--eval-dir DIR] [--rules rules/injection.yaml]
                                                [--policy NAME] [--json] [--misses]

Detected means the verdict under the policy's default thresholds is ``flag`` or ``block``
(both get a mark in the audit log; ``allow`` is a miss). Reported:

* deepset (``injection/deepset_train.jsonl``, label 1 = injection): TPR on injections, FPR on
  benign rows, for all rows and for two halves (even ids = development, odd ids = held out);
* NotInject (``injection/notinject_one.json``, all benign, full of trigger words): FPR;
* role-play jailbreaks (``injection/jailbreak_prompts_train.csv``, all attacks): detected, for a
  development part and a held-out part fixed before any rule was written (every 4th row, i.e.
  row index % 4 == 3, is held out; rules are tuned on the others only);
* per set, the rule categories (families) that fired: on how many rows, how many of those rows
  were detected, and for benign rows which categories caused the false positives;
* latency of ``check_text`` on 1 KB and 10 KB prompts (median, p99).

The data is read from ``../shared/eval`` (never copied into the project); when it is missing the
rates are skipped with a message and only latency is measured.
"""

from __future__ import annotations

import argparse
import csv
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
HOLDOUT_EVERY = 4  # row index % 4 == 3 of the jailbreak sample is held out

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


def load_jailbreaks(eval_dir: Path) -> list[str] | None:
    """The role-play jailbreak prompts, in file order, or None when the file is missing."""
    path = eval_dir / "injection" / "jailbreak_prompts_train.csv"
    if not path.is_file():
        return None
    with path.open(encoding="utf-8", newline="") as f:
        return [row["prompt"] for row in csv.DictReader(f)]


def is_holdout(index: int) -> bool:
    """The held-out part of the jailbreak sample: fixed by position, never by content."""
    return index % HOLDOUT_EVERY == HOLDOUT_EVERY - 1


def jailbreak_detection(
    scanner: InjectionScanner, prompts: list[str], policy: str | None = None
) -> dict[str, Any]:
    """Detected rate on the development and held-out parts; ``misses`` lists dev indices only
    (held-out misses are counted, not listed, so nobody tunes rules to them)."""
    parts = {"dev": [0, 0], "holdout": [0, 0]}
    misses: list[int] = []
    for i, prompt in enumerate(prompts):
        detected = scanner.check_text(prompt, policy).verdict in DETECTED
        part = "holdout" if is_holdout(i) else "dev"
        parts[part][0] += detected
        parts[part][1] += 1
        if not detected and part == "dev":
            misses.append(i)
    out: dict[str, Any] = {
        f"jailbreak_{k}": {"detected": _rate(d, n), "prompts": n} for k, (d, n) in parts.items()
    }
    out["jailbreak_misses"] = misses
    return out


def per_category(
    scanner: InjectionScanner,
    texts: list[tuple[str, bool]],
    policy: str | None = None,
) -> dict[str, dict[str, int]]:
    """For (text, is_attack) rows: per category, rows it fired on and how many were detected.

    On attacks ``detected`` is a true positive; on benign rows it is a false positive that the
    category took part in.
    """
    cats = {rule.id: rule.category for rule in scanner.pack.rules}
    out: dict[str, dict[str, int]] = {}
    for text, _attack in texts:
        verdict = scanner.check_text(text, policy)
        detected = verdict.verdict in DETECTED
        for category in {cats.get(rid, rid) for rid in verdict.rules}:
            entry = out.setdefault(category, {"rows": 0, "detected": 0})
            entry["rows"] += 1
            entry["detected"] += detected
    return dict(sorted(out.items()))


def families(
    scanner: InjectionScanner,
    sets: tuple[list[dict[str, Any]], list[str]] | None,
    jailbreaks: list[str] | None,
    policy: str | None = None,
) -> dict[str, dict[str, dict[str, int]]]:
    """Per set (attacks and benign rows apart), the categories that fired."""
    out: dict[str, dict[str, dict[str, int]]] = {}
    if sets is not None:
        rows, prompts = sets
        out["deepset_injections"] = per_category(
            scanner, [(r["text"], True) for r in rows if r["label"] == 1], policy
        )
        out["deepset_benign"] = per_category(
            scanner, [(r["text"], False) for r in rows if r["label"] == 0], policy
        )
        out["notinject"] = per_category(scanner, [(p, False) for p in prompts], policy)
    if jailbreaks is not None:
        out["jailbreak"] = per_category(scanner, [(p, True) for p in jailbreaks], policy)
    return out


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
    jailbreaks = load_jailbreaks(args.eval_dir)
    if jailbreaks is not None:
        report.update(jailbreak_detection(scanner, jailbreaks, policy=args.policy))
    report["families"] = families(scanner, sets, jailbreaks, policy=args.policy)
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
    for key in ("jailbreak_dev", "jailbreak_holdout"):
        if key in report:
            r = report[key]
            print(f"{key:16} detected {r['detected']:.3f} ({r['prompts']} prompts)")
    for name, cats in report["families"].items():
        print(f"{name}: rows fired / of them detected, per category")
        for category, c in cats.items():
            print(f"    {category:22} {c['rows']:4} / {c['detected']:4}")
    for key in ("latency_1kb", "latency_10kb"):
        r = report[key]
        print(f"{key:16} median {r['median_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms")
    if args.misses and sets is not None:
        print("missed:", " ".join(report["misses"]))
        print("false positives:", " ".join(report["false_positives"]), report["notinject_fp"])
        print("jailbreak dev misses (row index):", report.get("jailbreak_misses", []))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
