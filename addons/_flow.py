"""Glue shared by the stage addons: a flow's transit, and answers in the provider's shape."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions, http

from tollhouse import providers
from tollhouse.audit.record import Decision
from tollhouse.exchange import Exchange
from tollhouse.policyfile import PolicyError
from tollhouse.transit import Transit

KEY = "tollhouse"
# Prompts with more text than this are scanned in a worker thread so the event loop never stalls.
THREAD_THRESHOLD = 64 * 1024
log = logging.getLogger("tollhouse")


def transit_of(flow: http.HTTPFlow) -> Transit | None:
    """The transit the scope stage attached, or None for traffic Tollhouse does not handle."""
    return flow.metadata.get(KEY)


def active(flow: http.HTTPFlow) -> Transit | None:
    """The transit of a flow still awaiting a stage's decision: not answered, failed or killed."""
    if flow.response or flow.error or not flow.live:
        return None
    return transit_of(flow)


def refuse(
    flow: http.HTTPFlow, transit: Transit, status: int, refusal: str, message: str, stage: str
) -> None:
    """Answer the client instead of the provider, in the provider's own error shape and with
    ``x-should-retry: false`` so SDKs raise at once. ``message`` reaches the client and the audit
    log: it must never quote protected values or attack text."""
    api = transit.entry.api
    adapter = transit.adapter or (providers.ADAPTERS.get(api) if api else None)
    if adapter is not None:
        reply = adapter.error_reply(status, refusal, message)
        body, headers = reply.body, dict(reply.headers)
        status = reply.status
    else:
        body = json.dumps({"error": {"type": refusal, "message": message}}).encode()
        headers = {"content-type": "application/json"}
    headers["x-should-retry"] = "false"
    headers["x-tollhouse-decision"] = f"block; stage={stage}"
    flow.response = http.Response.make(status, body, headers)
    transit.refused = True
    transit.record.decision = Decision.BLOCK
    transit.record.reason = f"{stage}: {message}"
    log.info("exchange %s blocked at %s: %s", transit.record.id, stage, message)


async def off_loop[T](exchange: Exchange, work: Callable[..., T], *args: Any) -> T:
    """Run ``work(*args)`` on the exchange's text: inline when the prompt is small, in a worker
    thread when it is large, so one huge prompt never stalls every other flow."""
    if sum(len(s.text) for s in exchange.segments) > THREAD_THRESHOLD:
        return await asyncio.to_thread(work, *args)
    return work(*args)


def reload_policy[P](current: P | None, load: Callable[[Path], P], file: str, what: str) -> P:
    """Load ``rules/<file>`` (the ``tollhouse_rules`` folder) with ``load``. A bad file stops a
    starting gateway with its file:line error; a running gateway keeps ``current`` and says why."""
    try:
        return load(Path(ctx.options.tollhouse_rules) / file)
    except PolicyError as exc:
        if current is None:
            raise exceptions.OptionsError(str(exc)) from exc
        log.error("keeping the previous %s: %s", what, exc)
        return current
