"""Budget: reserve the exchange's worst-case cost against every budget that applies, before it is
sent; warn near the cap, and block or downgrade at it. The settle stage closes the reservation."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

from mitmproxy import ctx, exceptions, http

from addons._flow import active, contained, fail_closed, refuse
from tollhouse.budget.engine import BudgetEngine, Request
from tollhouse.budget.policy import load_budget_policy
from tollhouse.budget.store import StateError, open_store
from tollhouse.policyfile import PolicyError
from tollhouse.pricing import PriceBook
from tollhouse.providers.base import Refusal

log = logging.getLogger("tollhouse.budget")

HEADER = "x-tollhouse-budget"
_HEADERS = "tollhouse.budget"  # flow.metadata: the header values for the response


class Budget:
    def __init__(self) -> None:
        self.engine: BudgetEngine | None = None

    def load(self, loader):
        loader.add_option(
            "tollhouse_state",
            str,
            "",
            "Where budget spend lives: empty for the embedded store under tollhouse_data, "
            "or redis://host:port/db to share budgets between gateways.",
        )

    def configure(self, updated):
        if not {"tollhouse_rules", "tollhouse_state", "tollhouse_data"} & updated:
            return
        try:
            policy = load_budget_policy(Path(ctx.options.tollhouse_rules) / "budgets.yaml")
        except PolicyError as exc:
            # A running gateway keeps its last good budgets; a starting one refuses to start.
            if self.engine is None:
                raise exceptions.OptionsError(str(exc)) from exc
            log.error("keeping the previous budgets: %s", exc)
            policy = self.engine.policy
        if self.engine is not None and not {"tollhouse_state", "tollhouse_data"} & updated:
            self.engine.policy = policy
            return
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        if not policy.budgets:
            return  # nothing to count: no store to open
        try:
            # A gateway that cannot reach its budgets does not start.
            store = open_store(ctx.options.tollhouse_state, Path(ctx.options.tollhouse_data))
        except StateError as exc:
            raise exceptions.OptionsError(str(exc)) from exc
        self.engine = BudgetEngine(policy, store)

    @fail_closed("budget")
    async def request(self, flow: http.HTTPFlow) -> None:
        transit = active(flow)
        engine = self.engine
        if transit is None or transit.exchange is None or engine is None:
            return
        exchange, record = transit.exchange, transit.record
        request = Request(
            provider=transit.entry.name,
            model=exchange.model,
            operation=exchange.operation,
            tokens_in=record.tokens_in_estimated or 0,
            max_output_tokens=exchange.max_output_tokens,
            choices=exchange.choices,
            team=record.team,
            app=record.app,
            user=record.user_id,
        )
        if not engine.applies(request):
            return
        meter = ctx.master.addons.get("meter")
        prices = meter.prices if meter is not None and meter.prices else PriceBook()
        verdict = await asyncio.to_thread(engine.admit, request, prices)
        if flow.error or not flow.live:  # the client left while the store answered
            if verdict.hold is not None:
                verdict.hold.release()
            return
        # Held from here on: whatever happens next, the settle stage closes it exactly once.
        transit.reservation = verdict.hold
        if verdict.blocked is not None:
            transit.event("budget", "block", budget=verdict.budget, reason=verdict.blocked)
            if verdict.budget is None:  # no price for a model under a USD budget
                refuse(flow, transit, 403, Refusal.PERMISSION, verdict.blocked, "budget")
            else:
                refuse(flow, transit, 429, Refusal.RATE_LIMIT, verdict.blocked, "budget")
            return
        headers = []
        for step in verdict.downgrades:
            transit.event("budget", "downgrade", **dataclasses.asdict(step))
            headers.append(step.header)
        if verdict.model is not None and verdict.model != exchange.model:
            exchange.set_model(verdict.model)
        for warning in verdict.warnings:
            transit.event("budget", "warn", budget=warning.budget, used_percent=warning.percent)
            headers.append(warning.header)
        if headers:
            flow.metadata[_HEADERS] = headers

    @contained("budget")
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            for value in flow.metadata.get(_HEADERS, ()):
                flow.response.headers.add(HEADER, value)

    def done(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None
