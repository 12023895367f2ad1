"""Tollhouse's DLP engine vs presidio's AnalyzerEngine on the same texts, side by side.

Both run the same pattern recognizers (presidio's predefined ones, our phone pattern and our
secret formats) with no spaCy model: presidio gets a no-op NLP engine so it runs offline.
Prints the median milliseconds per text for 1 KB, 10 KB and 100 KB of prompt-like text with
some PII sprinkled in, the speedup, and the whole DLP stage (inspect on an Exchange).

    .venv/bin/python scripts/bench_dlp.py [--repeat N] [--rules DIR]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tollhouse.dlp import DlpScanner, load_dlp_policy  # noqa: E402
from tollhouse.exchange import Exchange, Segment  # noqa: E402

PROSE = (
    "Please review the following service description and summarize the main risks. "
    "The billing job runs nightly at 02:00 and reconciles 1,250 invoices against the ledger. "
    "Our team prefers short answers with bullet points, and code samples in Python 3.12. "
    "When the queue is full the worker retries three times with exponential backoff. "
    "The customer asked whether the export can include the last 90 days of orders. "
    "def handler(event, context):\n    return {'status': 200, 'items': event.get('items', [])}\n"
    "Error at line 42: KeyError 'user_id' in reports/monthly.py while building the table. "
)
PII = (
    "Contact {first}.{last}@examplecorp.com or call +1 (415) 555-{n4}.",
    "Card on file 4111 1111 1111 1111, refund to IBAN DE89 3704 0044 0532 0130 00.",
    "The client's SSN is 078-05-{n4} per the form.",
    "The server 10.20.{a}.{b} rejected the request from 2001:db8::{a}.",
    "Use the staging key sk-proj-{key} for the test.",
    "AWS access key AKIA{aws} was in the log.",
)


def make_text(size: int, seed: int = 7) -> str:
    """Prompt-like text of ``size`` characters with about one PII item per 700 characters."""
    rng = random.Random(seed)
    parts: list[str] = []
    length = 0
    sentences = PROSE.split(". ")
    while length < size:
        if rng.random() < 0.15:
            s = rng.choice(PII).format(
                first=rng.choice(["ann", "raj", "li", "omar"]),
                last=rng.choice(["smith", "khan", "wu", "diaz"]),
                n4=f"{rng.randrange(10000):04d}",
                a=rng.randrange(1, 255),
                b=rng.randrange(1, 255),
                key="".join(
                    rng.choice("abcdefghijkmnopqrstuvwxyzABCDEFGH0123456789") for _ in range(48)
                ),
                aws="".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)),
            )
        else:
            s = rng.choice(sentences) + ". "
        parts.append(s + " ")
        length += len(s) + 1
    return "".join(parts)[:size]


def presidio_analyzer(scanner: DlpScanner) -> Any:
    """presidio's AnalyzerEngine with the same pattern recognizers and a no-op NLP engine."""
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpArtifacts, NlpEngine

    class NoModel(NlpEngine):
        """No spaCy model: no tokens, no lemmas, no NER (as on an air-gapped gateway)."""

        def load(self) -> None: ...
        def is_loaded(self) -> bool:
            return True

        def process_text(self, text: str, language: str) -> NlpArtifacts:
            return NlpArtifacts([], [], [], [], self, language)  # type: ignore[arg-type]

        def process_batch(self, texts, language, batch_size=1, n_process=1, **kw):  # type: ignore[no-untyped-def]
            for t in texts:
                yield t, self.process_text(t, language)

        def is_stopword(self, word: str, language: str) -> bool:
            return False

        def is_punct(self, word: str, language: str) -> bool:
            return False

        def get_supported_entities(self) -> list[str]:
            return []

        def get_supported_languages(self) -> list[str]:
            return ["en"]

    import presidio_analyzer.predefined_recognizers as predefined

    registry = RecognizerRegistry(supported_languages=["en"])
    for rule in scanner.detector.rules:
        if hasattr(predefined, rule.name):
            registry.add_recognizer(getattr(predefined, rule.name)())
        else:  # our phone, Ethereum, secret and custom rules, as presidio pattern recognizers
            patterns = [Pattern(rule.name, p.pattern, score) for p, score in rule.patterns]
            registry.add_recognizer(
                PatternRecognizer(
                    supported_entity=rule.entity,
                    name=rule.name,
                    patterns=patterns,
                    context=list(rule.context) or None,
                )
            )
    return AnalyzerEngine(registry=registry, nlp_engine=NoModel(), supported_languages=["en"])


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm up caches and lazy compilation
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--rules", type=Path, default=ROOT / "rules")
    args = parser.parse_args()
    scanner = DlpScanner(load_dlp_policy(args.rules / "dlp.yaml"))
    analyzer = presidio_analyzer(scanner)
    print(
        f"{'size':>7} {'presidio ms':>12} {'tollhouse ms':>13} {'speedup':>8} "
        f"{'DLP stage ms':>13} {'findings':>9}"
    )
    for size in (1_000, 2_000, 10_000, 100_000):
        text = make_text(size)
        repeat = max(3, args.repeat // (10 if size >= 100_000 else 1))
        p_ms = median_ms(lambda t=text: analyzer.analyze(t, language="en"), max(3, repeat // 3))
        t_ms = median_ms(lambda t=text: scanner.scan_text(t), repeat)

        def stage(t: str = text) -> object:
            exchange = Exchange(
                "openai",
                "openai",
                "chat",
                "/v1/chat/completions",
                segments=[Segment("user", ("messages", 0, "content"), t)],
            )
            return scanner.inspect(exchange, "engineering")

        s_ms = median_ms(stage, repeat)
        found = len(scanner.scan_text(text))
        print(f"{size:>7} {p_ms:12.1f} {t_ms:13.2f} {p_ms / t_ms:7.0f}x {s_ms:13.2f} {found:9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
