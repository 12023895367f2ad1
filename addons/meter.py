"""Meter: estimate the prompt's tokens and worst-case cost before it is sent, and make sure a
streamed response will report its real usage."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from mitmproxy import ctx, http

from addons._flow import active, fail_closed, off_loop, reload_policy
from tollhouse.exchange import Role, Usage
from tollhouse.pricing import PriceBook, load_price_book
from tollhouse.tokens import TokenCounter

log = logging.getLogger("tollhouse.meter")


class Meter:
    def __init__(self) -> None:
        self.prices: PriceBook | None = None
        self.counter: TokenCounter | None = None

    def configure(self, updated):
        if "tollhouse_rules" in updated:
            self.prices = reload_policy(self.prices, load_price_book, "prices.yaml", "prices")
        if "tollhouse_data" in updated:
            self.counter = TokenCounter(Path(ctx.options.tollhouse_data) / "cache" / "tiktoken")
            # Loading an encoding takes most of a second: do it now, beside the event loop.
            threading.Thread(target=self.counter.warm, name="tiktoken-warm", daemon=True).start()

    @fail_closed("meter")
    async def request(self, flow: http.HTTPFlow) -> None:
        transit = active(flow)
        if transit is None or transit.exchange is None:
            return
        exchange, record = transit.exchange, transit.record
        # The prompt as the provider counts it: what the adapter read, not the keys, metadata
        # and headers that the other stages scan besides.
        texts = [s.text for s in exchange.segments if s.role != Role.FIELD]
        assert self.counter is not None and self.prices is not None
        tokens = await off_loop(exchange, self.counter.count_prompt, texts, exchange.model)
        record.tokens_in_estimated = tokens
        output = (exchange.max_output_tokens or 0) * exchange.choices
        worst = Usage(input_tokens=tokens, output_tokens=output)
        cost = self.prices.cost(transit.entry.name, exchange.model, worst)
        record.cost_estimated_usd = float(cost) if cost is not None else None
        if exchange.stream and transit.adapter is not None:
            transit.adapter.ask_for_stream_usage(exchange)
