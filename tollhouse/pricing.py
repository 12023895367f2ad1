"""What an exchange costs: local overrides (rules/prices.yaml) first, then genai-prices' data.

genai-prices ships its price tables inside the package; we never ask it to update them over the
network (no ``UpdatePrices``), so prices are those of the installed version plus our overrides.
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import genai_prices

from tollhouse.exchange import Usage
from tollhouse.policyfile import PolicyDocument, load_policy_file

log = logging.getLogger(__name__)

_MTOK = Decimal(1_000_000)
# Our provider names (rules/hosts.yaml) → genai-prices provider ids, where they differ.
_GENAI_PROVIDER = {
    "azure-openai": "azure",
    "gemini": "google",
    "vertex-ai": "google",
    "bedrock": "aws",
}
_RATE_FIELDS = ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok")


@dataclass(frozen=True, slots=True)
class PriceOverride:
    model: str  # exact or fnmatch pattern
    provider: str | None
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None

    def matches(self, provider: str | None, model: str) -> bool:
        if self.provider and self.provider != provider:
            return False
        return fnmatch.fnmatchcase(model, self.model)

    def cost(self, usage: Usage) -> Decimal:
        read = usage.cache_read_tokens if self.cache_read_per_mtok is not None else 0
        write = usage.cache_write_tokens if self.cache_write_per_mtok is not None else 0
        total = (usage.input_tokens - read - write) * self.input_per_mtok
        total += usage.output_tokens * self.output_per_mtok
        total += read * (self.cache_read_per_mtok or 0) + write * (self.cache_write_per_mtok or 0)
        return total / _MTOK


class PriceBook:
    """Prices usage in USD. ``cost`` returns None for a model nobody has a price for."""

    def __init__(self, overrides: list[PriceOverride] | None = None) -> None:
        self.overrides = overrides or []

    def cost(self, provider: str | None, model: str | None, usage: Usage) -> Decimal | None:
        if not model:
            return None
        for override in self.overrides:
            if override.matches(provider, model):
                return override.cost(usage)
        return _genai_cost(provider, model, usage)


@lru_cache(maxsize=1024)
def _genai_provider(provider: str | None, model: str) -> str | None:
    """The genai-prices provider id under which ``model`` is found, or '' for a global lookup.
    Returns None when no table knows the model (logged once per model, thanks to the cache)."""
    probe = genai_prices.Usage(input_tokens=1, output_tokens=1)
    candidates = [_GENAI_PROVIDER.get(provider or "", provider), ""]
    for candidate in candidates:
        if candidate is None:
            continue
        try:
            genai_prices.calc_price(probe, model_ref=model, provider_id=candidate or None)
        except LookupError:
            continue
        return candidate
    # The model name is client text (and may hold anything): logged as a fingerprint. (Imported
    # here: the DLP package is heavy, and the budget command reads prices without it.)
    from tollhouse.dlp.scrub import fingerprint

    log.info(
        "no price for model %s (provider %s); cost is left empty",
        fingerprint(model, "model"),
        provider,
    )
    return None


def _genai_cost(provider: str | None, model: str, usage: Usage) -> Decimal | None:
    provider_id = _genai_provider(provider, model)
    if provider_id is None:
        return None
    usage_in = genai_prices.Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens or None,
        cache_write_tokens=usage.cache_write_tokens or None,
    )
    result = genai_prices.calc_price(usage_in, model_ref=model, provider_id=provider_id or None)
    return result.total_price


def _rate(doc: PolicyDocument, path: tuple[str | int, ...], value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise doc.error(path, "must be a non-negative number (USD per million tokens)")
    return Decimal(str(value))


def load_price_book(path: Path) -> PriceBook:
    """Load rules/prices.yaml (a missing file means no overrides). Raises PolicyError."""
    if not path.exists():
        return PriceBook()
    doc = load_policy_file(path)
    if not isinstance(doc.data, dict):
        raise doc.error((), "must be a mapping with `models`")
    if extra := set(doc.data) - {"version", "models"}:
        raise doc.error((sorted(extra)[0],), "unknown key")
    items = doc.data.get("models") or []
    if not isinstance(items, list):
        raise doc.error(("models",), "must be a list")
    overrides = []
    for i, item in enumerate(items):
        where: tuple[str | int, ...] = ("models", i)
        if not isinstance(item, dict):
            raise doc.error(where, "must be a mapping")
        if extra := set(item) - {"model", "provider", *_RATE_FIELDS}:
            raise doc.error((*where, sorted(extra)[0]), "unknown key")
        model = item.get("model")
        if not isinstance(model, str) or not model:
            raise doc.error((*where, "model"), "required, must be text")
        provider = item.get("provider")
        if provider is not None and not isinstance(provider, str):
            raise doc.error((*where, "provider"), "must be text")
        rates: dict[str, Decimal | None] = {}
        for key in _RATE_FIELDS:
            if key in item:
                rates[key] = _rate(doc, (*where, key), item[key])
            elif key in ("input_per_mtok", "output_per_mtok"):
                raise doc.error((*where, key), "required")
        overrides.append(PriceOverride(model=model, provider=provider, **rates))  # type: ignore[arg-type]
    return PriceBook(overrides)
