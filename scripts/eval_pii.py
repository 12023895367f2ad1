"""Precision and recall of the DLP engine per entity type on labelled PII data sets.

Reads every set in ``shared/eval/pii/`` beside the project (never copied into it), or the
``--file`` given: presidio-research's format, a JSON list (or JSON lines) of
``{full_text, spans: [{entity_type, start_position, end_position}]}``. A prediction counts
when it overlaps a gold span of the same entity type; each gold span is matched once.
Entity types the engine has no recognizer for (PERSON, ADDRESS...) are listed, not scored.

    .venv/bin/python scripts/eval_pii.py [--file PATH ...] [--rules DIR] [--misses]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tollhouse.dlp import DlpScanner, load_dlp_policy  # noqa: E402

EVAL_DIR = Path(__file__).resolve().parents[2] / "shared/eval/pii"
DEFAULT_FILE = EVAL_DIR / "generated_small.json"
TYPES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS")
# Other spellings of the same types in other labelled sets.
ALIASES = {
    "EMAIL": "EMAIL_ADDRESS",
    "PHONE": "PHONE_NUMBER",
    "PHONENUMBER": "PHONE_NUMBER",
    "TELEPHONE": "PHONE_NUMBER",
    "CREDIT_CARD_NUMBER": "CREDIT_CARD",
    "CREDITCARD": "CREDIT_CARD",
    "IBAN": "IBAN_CODE",
    "SSN": "US_SSN",
    "IP": "IP_ADDRESS",
}


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


def _type(name: str) -> str:
    return ALIASES.get(name.upper(), name.upper())


def evaluate(
    rows: list[dict[str, Any]],
    scanner: DlpScanner,
    misses: list[tuple[str, str, str]] | None = None,
) -> dict[str, Score]:
    """Scores per type in TYPES plus "combined"; ``misses`` collects (kind, type, value)."""
    scores = {t: Score() for t in (*TYPES, "combined")}
    for row in rows:
        text = row["full_text"]
        gold = [
            (_type(s["entity_type"]), s["start_position"], s["end_position"])
            for s in row["spans"]
            if _type(s["entity_type"]) in TYPES
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
            elif misses is not None:
                misses.append(("false positive", etype, text[max(0, start - 30) : end + 10]))
        for i, g in enumerate(gold):
            if i not in matched_gold:
                scores[g[0]].fn += 1
                scores["combined"].fn += 1
                if misses is not None:
                    misses.append(("missed", g[0], text[max(0, g[1] - 30) : g[2] + 10]))
    return scores


def load_rows(path: Path) -> list[dict[str, Any]] | None:
    """The labelled rows of ``path`` (a JSON list or JSON lines), or None if not that format."""
    raw = path.read_text(encoding="utf-8")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in raw.splitlines() if line.strip()]
        except json.JSONDecodeError:
            return None
    if not isinstance(data, list) or not all(
        isinstance(r, dict) and "full_text" in r and "spans" in r for r in data
    ):
        return None
    return data


def report(name: str, rows: list[dict[str, Any]], scanner: DlpScanner, show: bool) -> None:
    misses: list[tuple[str, str, str]] = []
    scores = evaluate(rows, scanner, misses)
    unscored = Counter(
        s["entity_type"] for r in rows for s in r["spans"] if _type(s["entity_type"]) not in TYPES
    )
    print(f"\n{name}: {len(rows)} rows")
    print(f"{'entity':15} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>10} {'recall':>7}")
    for entity, s in scores.items():
        if s.tp + s.fp + s.fn == 0:  # nothing labelled or found: no figure, rather than a fake 1.0
            print(f"{entity:15} {s.tp:4} {s.fp:4} {s.fn:4} {'n/a':>10} {'n/a':>7}")
            continue
        print(f"{entity:15} {s.tp:4} {s.fp:4} {s.fn:4} {s.precision:10.3f} {s.recall:7.3f}")
    if unscored:
        listed = ", ".join(f"{k} {v}" for k, v in unscored.most_common())
        print(f"not scored (no recognizer for these types): {listed}")
    if show:
        for kind, entity, snippet in misses:
            print(f"  {kind:14} {entity:13} {snippet!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--file", type=Path, action="append", help="a labelled set (default: all in shared)"
    )
    parser.add_argument("--rules", type=Path, default=ROOT / "rules")
    parser.add_argument("--misses", action="store_true", help="list misses and false positives")
    args = parser.parse_args()
    files = args.file or sorted(
        p for p in EVAL_DIR.glob("*") if p.suffix in (".json", ".jsonl") and p.is_file()
    )
    if not files:
        print(f"skipped: no labelled sets in {EVAL_DIR} (it lives in shared/, beside the project)")
        return 0
    scanner = DlpScanner(load_dlp_policy(args.rules / "dlp.yaml"))
    for path in files:
        if not path.exists():
            print(f"skipped: {path} not found")
            continue
        rows = load_rows(path)
        if rows is None:
            print(f"skipped: {path.name} is not a list of {{full_text, spans}} rows")
            continue
        report(path.name, rows, scanner, args.misses)
    return 0


if __name__ == "__main__":
    sys.exit(main())
