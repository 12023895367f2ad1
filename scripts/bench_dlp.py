"""Tollhouse's DLP engine vs presidio's AnalyzerEngine on the same texts, side by side.

Both run the same pattern recognizers (presidio's predefined ones, our phone pattern and our
secret formats) with no spaCy model: presidio gets a no-op NLP engine so it runs offline.
Two corpora, each at 1 KB, 2 KB, 10 KB and 100 KB:

- ``realistic``: what prompts look like — prose, code, logs and JSON with a handful of PII
  items and secrets (a few findings per 10 KB). The latency targets are set on this one.
- ``dense``: a stress test — short sentences full of numbers with a PII item every ~700
  characters (about 300 findings per 100 KB).

For each: presidio's median ms, Tollhouse's ``scan_text`` median and p90 ms, the speedup of
the medians, the whole DLP stage (``DlpScanner.inspect`` on an Exchange) median and p90 ms,
and the number of findings. Runs are interleaved per size so both engines see the same load.

    .venv/bin/python scripts/bench_dlp.py [--repeat N] [--rules DIR] [--corpus NAME]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import string
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tollhouse.dlp import DlpScanner, load_dlp_policy  # noqa: E402
from tollhouse.exchange import Exchange, Segment  # noqa: E402

SIZES = (1_000, 2_000, 10_000, 100_000)

# --- the dense stress corpus (the original benchmark text) ---------------------------------

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


def dense_text(size: int, seed: int = 7) -> str:
    """Number-heavy text of ``size`` characters with about one PII item per 700 characters."""
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


# --- the realistic prompt corpus -------------------------------------------------------------

REAL_PROSE = (
    "I'm migrating our checkout service from Flask to FastAPI and want to keep the public API "
    "unchanged. The service handles about {n} requests per minute at peak, mostly from the "
    "mobile app (version 4.{a}). Can you suggest how to structure the routers and where the "
    "dependency injection should live?",
    "Here is the context: we run on Kubernetes 1.29 with three replicas behind an ingress. "
    "Latency at p99 went from 120 ms to {ms} ms after the last deploy, and I suspect the new "
    "database connection pool settings.",
    "Summarize the following meeting notes in five bullet points. Keep the action items and "
    "who owns them; drop the small talk. The deadline we agreed on is the end of Q3.",
    "Please review this function for bugs and performance problems. It is called once per "
    "order and the orders table has roughly {n}k rows; we saw timeouts during the sale.",
    "Rewrite the paragraph below so it reads well for a non-technical audience, and keep it "
    "under 200 words. Avoid jargon such as idempotency or eventual consistency.",
    "The integration tests fail only on CI, never locally. The runner uses Python 3.12 and "
    "Postgres 16; locally I have 3.11. The failure is a timeout after 30 seconds in test {a}.",
    "What are the trade-offs between a message queue and a cron job for sending the nightly "
    "digest? We have about {n} subscribers and the email provider allows 10 requests per second.",
)
REAL_PII = (
    "If anything is unclear, reach me at {first}.{last}@northwind-logistics.com.",
    "The customer, {first} {last}, called from +1 415-555-{n4} about the refund.",
    "Her card ending in 1111 was charged twice: 4111 1111 1111 1111, expiry 09/27.",
    "Refund to the account DE89 3704 0044 0532 0130 00 once approved.",
    "The form lists SSN 078-05-{n4}, which we must never store in plain text.",
    "Staging config had OPENAI_API_KEY=sk-proj-{key} committed by mistake.",
    "The log also showed aws_access_key_id = AKIA{aws} in the environment dump.",
    "DATABASE_URL=postgres://svc_checkout:{pw}@db.internal:{port}/orders",
    "I pushed with the token ghp_{gh} and now I need to rotate it.",
    "The failing requests all came from 10.20.{a}.{ss} on the office network.",
)
REAL_CODE = (
    "```python\nimport asyncio\nfrom datetime import datetime, timedelta\n\n"
    "async def fetch_orders(session, since: datetime, limit: int = {n}) -> list[dict]:\n"
    '    """Orders placed since ``since``, newest first."""\n'
    "    query = select(Order).where(Order.created_at >= since).limit(limit)\n"
    "    rows = (await session.execute(query)).scalars().all()\n"
    "    return [row.to_dict() for row in rows if row.status != 'cancelled']\n\n"
    "def retry_delay(attempt: int) -> float:\n    return min(30.0, 0.5 * 2 ** attempt)\n```\n",
    "```typescript\nexport async function loadCart(id: string): Promise<Cart> {{\n"
    "  const res = await fetch(`/api/v2/carts/${{id}}`,\n"
    "    {{ headers: {{ 'x-trace': '{hex8}' }} }});\n"
    "  if (res.status === 404) return emptyCart();\n"
    "  if (!res.ok) throw new Error(`cart ${{id}}: HTTP ${{res.status}}`);\n"
    "  return (await res.json()) as Cart;\n}}\n```\n",
    "```sql\nSELECT o.id, o.total_cents, c.country\nFROM orders o\n"
    "JOIN customers c ON c.id = o.customer_id\n"
    "WHERE o.created_at > now() - interval '30 days' AND o.total_cents > {n}00\n"
    "ORDER BY o.created_at DESC\nLIMIT 500;\n```\n",
    "```yaml\nservice:\n  name: checkout\n  replicas: 3\n  image: registry.local/checkout:1.{a}.0\n"
    "  resources:\n    limits: {{cpu: 500m, memory: 512Mi}}\n  env:\n    LOG_LEVEL: info\n"
    "    POOL_SIZE: '20'\n    TIMEOUT_MS: '{ms}'\n```\n",
    "```\n$ git log --oneline -3\n{sha7} fix: release the pool connection on timeout\n"
    "{sha7b} feat: add retry with jitter\n{sha7c} chore: bump fastapi to 0.110.0\n```\n",
)
REAL_LOG = (
    "2024-05-{day:02d}T10:{mm:02d}:{ss:02d}.{ms:03d}Z INFO  [worker-{a}] "
    "request_id={uuid} GET /api/v2/orders?page={a} 200 {ms}ms\n",
    "2024-05-{day:02d}T10:{mm:02d}:{ss:02d}.{ms:03d}Z WARN  [pool] "
    "connection wait {ms}ms exceeds 250ms (in_use=20/20, waiting={a})\n",
    "2024-05-{day:02d}T10:{mm:02d}:{ss:02d}.{ms:03d}Z ERROR [checkout] order {n} failed: "
    "TimeoutError after 30.0s (trace {sha})\n",
    '  File "/app/checkout/service.py", line {a}, in place_order\n'
    "    result = await gateway.charge(order.total_cents)\n",
)
REAL_JSON = (
    '{{"id": "{uuid}", "status": "shipped", "items": [{{"sku": "SKU-{n}", "qty": 2, '
    '"price_cents": {ms}00}}], "created_at": "2024-05-{day:02d}T08:00:00Z", '
    '"weight_kg": 1.{a}, "tags": ["priority", "eu"]}}\n'
)


def _word(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _fill(template: str, rng: random.Random) -> str:
    """``template`` with fresh random values for every field it may name."""
    hexd, alnum = "0123456789abcdef", string.ascii_letters + string.digits
    return template.format(
        first=rng.choice(["ann", "raj", "li", "omar", "maria", "kenji", "fatima", "lars"]),
        last=rng.choice(["smith", "khan", "wu", "diaz", "rossi", "tanaka", "okafor", "berg"]),
        n4=f"{rng.randrange(10000):04d}",
        a=rng.randrange(1, 60),
        n=rng.randrange(1, 5000),
        ms=rng.randrange(2, 900),
        day=rng.randrange(1, 29),
        mm=rng.randrange(60),
        ss=rng.randrange(60),
        port=rng.choice([443, 5432, 6379, 8080]),
        key=_word(rng, alnum, 48),
        aws=_word(rng, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
        gh=_word(rng, alnum, 36),
        pw=_word(rng, alnum + "!#%", 14),
        hex8=_word(rng, hexd, 8),
        sha=_word(rng, hexd, 40),
        sha7=_word(rng, hexd, 7),
        sha7b=_word(rng, hexd, 7),
        sha7c=_word(rng, hexd, 7),
        uuid="-".join(_word(rng, hexd, n) for n in (8, 4, 4, 4, 12)),
    )


def realistic_text(size: int, seed: int = 11) -> str:
    """A prompt-like mix of prose, code, logs and JSON with ~1 PII item or secret per 2.5 KB."""
    rng = random.Random(seed)
    parts: list[str] = []
    length = 0
    next_pii = rng.randrange(200, 600)
    while length < size:
        kind = rng.random()
        if length >= next_pii:
            block = _fill(rng.choice(REAL_PII), rng) + " "
            next_pii = length + rng.randrange(1500, 3500)
        elif kind < 0.45:
            block = _fill(rng.choice(REAL_PROSE), rng) + "\n\n"
        elif kind < 0.70:
            block = _fill(rng.choice(REAL_CODE), rng) + "\n"
        elif kind < 0.90:
            block = "".join(_fill(rng.choice(REAL_LOG), rng) for _ in range(rng.randrange(3, 9)))
        else:
            block = _fill(REAL_JSON, rng)
        parts.append(block)
        length += len(block)
    return "".join(parts)[:size]


CORPORA: dict[str, Callable[[int], str]] = {"realistic": realistic_text, "dense": dense_text}


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


def timings_ms(fn: Callable[[], object], repeat: int) -> list[float]:
    """Milliseconds of ``repeat`` calls of ``fn`` after one warm-up call."""
    fn()  # warm up caches and lazy compilation
    gc.collect()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def p90(times: list[float]) -> float:
    return statistics.quantiles(times, n=10)[-1] if len(times) > 1 else times[0]


def stage_fn(scanner: DlpScanner, text: str) -> Callable[[], object]:
    """The whole DLP stage on a one-message chat exchange, as the addon runs it."""

    def stage() -> object:
        exchange = Exchange(
            "openai",
            "openai",
            "chat",
            "/v1/chat/completions",
            segments=[Segment("user", ("messages", 0, "content"), text)],
        )
        return scanner.inspect(exchange, "engineering")

    return stage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=400, help="runs of the 1 KB text")
    parser.add_argument("--rules", type=Path, default=ROOT / "rules")
    parser.add_argument("--corpus", choices=[*CORPORA, "all"], default="all")
    parser.add_argument("--no-presidio", action="store_true", help="skip presidio (faster)")
    parser.add_argument(
        "--pure-python", action="store_true", help="disable the hyperscan prefilter"
    )
    args = parser.parse_args()
    if args.pure_python:
        from tollhouse.dlp import prefilter

        prefilter.hyperscan = None
    scanner = DlpScanner(load_dlp_policy(args.rules / "dlp.yaml"))
    analyzer = None if args.no_presidio else presidio_analyzer(scanner)
    engine = "hyperscan prefilter" if scanner.detector.uses_prefilter else "pure-Python triggers"
    print(f"Tollhouse engine: {engine}; presidio: AnalyzerEngine, same recognizers, no NLP model")
    print(
        f"{'corpus':<10} {'size':>7} {'presidio':>9} {'tollhouse':>10} {'p90':>6} "
        f"{'speedup':>8} {'DLP stage':>10} {'p90':>6} {'findings':>9}"
    )
    print(
        f"{'':<10} {'':>7} {'med ms':>9} {'med ms':>10} {'ms':>6} {'':>8} {'med ms':>10} "
        f"{'ms':>6} {'':>9}"
    )
    for name, make in CORPORA.items():
        if args.corpus not in ("all", name):
            continue
        for size in SIZES:
            text = make(size)
            # Fewer runs for bigger texts: ~the same wall time per size, 30+ runs at 100 KB.
            repeat = max(30, args.repeat * 1_000 // size)
            p_ms = float("nan")
            if analyzer is not None:
                runs = max(5, repeat // 10)
                p_ms = statistics.median(
                    timings_ms(lambda t=text: analyzer.analyze(t, language="en"), runs)
                )
            t = timings_ms(lambda t=text: scanner.scan_text(t), repeat)
            s = timings_ms(stage_fn(scanner, text), repeat)
            found = len(scanner.scan_text(text))
            t_med, s_med = statistics.median(t), statistics.median(s)
            print(
                f"{name:<10} {size:>7} {p_ms:9.1f} {t_med:10.2f} {p90(t):6.2f} "
                f"{p_ms / t_med:7.0f}x {s_med:10.2f} {p90(s):6.2f} {found:9}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
