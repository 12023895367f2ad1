"""Precision and recall of the DLP engine per entity type on a labelled PII data set.

Reads presidio-research's generated sample (``shared/eval/pii/generated_small.json`` beside
the project, never copied into it) or ``--file``. A prediction counts when it overlaps a gold
span of the same entity type.

    .venv/bin/python scripts/eval_pii.py [--file PATH] [--rules DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tollhouse.dlp import DlpScanner, load_dlp_policy  # noqa: E402

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "shared/eval/pii/generated_small.json"
TYPES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS")


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def evaluate(rows: list[dict], scanner: DlpScanner) -> dict[str, Score]:
    """Scores per type in TYPES plus "combined"."""
    scores = {t: Score() for t in (*TYPES, "combined")}
    for row in rows:
        text = row["full_text"]
        gold = [
            (s["entity_type"], s["start_position"], s["end_position"])
            for s in row["spans"]
            if s["entity_type"] in TYPES
        ]
        pred = [(f.entity_type, f.start, f.end) for f in scanner.scan_text(text)]
        pred = [p for p in pred if p[0] in TYPES]
        matched_gold: set[int] = set()
        for etype, start, end in pred:
            hit = next(
                (
                    i
                    for i, g in enumerate(gold)
                    if g[0] == etype and start < g[2] and g[1] < end and i not in matched_gold
                ),
                None,
            )
            for key in (etype, "combined"):
                if hit is None:
                    scores[key].fp += 1
                else:
                    scores[key].tp += 1
            if hit is not None:
                matched_gold.add(hit)
        for i, g in enumerate(gold):
            if i not in matched_gold:
                scores[g[0]].fn += 1
                scores["combined"].fn += 1
    return scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE)
    parser.add_argument("--rules", type=Path, default=ROOT / "rules")
    args = parser.parse_args()
    if not args.file.exists():
        print(f"skipped: {args.file} not found (it lives in shared/, beside the project)")
        return 0
    rows = json.loads(args.file.read_text(encoding="utf-8"))
    scanner = DlpScanner(load_dlp_policy(args.rules / "dlp.yaml"))
    scores = evaluate(rows, scanner)
    print(f"{'entity':15} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>10} {'recall':>7}")
    for name, s in scores.items():
        if s.tp + s.fp + s.fn == 0:  # nothing labelled or found: no figure, rather than a fake 1.0
            print(f"{name:15} {s.tp:4} {s.fp:4} {s.fn:4} {'n/a':>10} {'n/a':>7}")
            continue
        print(f"{name:15} {s.tp:4} {s.fp:4} {s.fn:4} {s.precision:10.3f} {s.recall:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
