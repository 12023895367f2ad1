"""Glue shared by the stage addons: a flow's transit, and answers in the provider's shape."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mitmproxy import ctx, exceptions, http

from tollhouse import providers
from tollhouse.audit.record import Decision
from tollhouse.dlp import DlpScanner
from tollhouse.dlp.scrub import scrub
from tollhouse.exchange import Exchange
from tollhouse.policyfile import PolicyError
from tollhouse.providers.base import Refusal
from tollhouse.transit import Transit

KEY = "tollhouse"
# Prompts with more text than this are scanned in a worker thread so the event loop never stalls:
# the detectors are linear, but adversarial text costs up to ~30 us a character, so only a
# prompt this small is sure to be scanned inline within a few milliseconds.
THREAD_THRESHOLD = 1024
SWITCH_INTERVAL = 0.0005  # seconds a scanning thread holds the GIL while the loop waits for it
log = logging.getLogger("tollhouse")


def transit_of(flow: http.HTTPFlow) -> Transit | None:
    """The transit the scope stage attached, or None for traffic Tollhouse does not handle."""
    return flow.metadata.get(KEY)


def active(flow: http.HTTPFlow) -> Transit | None:
    """The transit of a flow still awaiting a stage's decision: not answered, failed or killed."""
    if flow.response or flow.error or not flow.live:
        return None
    return transit_of(flow)


def dlp_scanner() -> DlpScanner | None:
    """The DLP stage's scanner, or None when the stage is switched off (or has no policy)."""
    try:
        scanner = getattr(ctx.master.addons.get("dlp"), "scanner", None)
    except Exception:  # no master (outside a running proxy): nothing to scan with
        return None
    return scanner if isinstance(scanner, DlpScanner) else None


def scrub_client_text(text: str) -> str:
    """``text`` as the audit and the logs may carry it (see :func:`tollhouse.dlp.scrub.scrub`)."""
    return scrub(dlp_scanner(), text)


def refuse(
    flow: http.HTTPFlow, transit: Transit, status: int, refusal: str, message: str, stage: str
) -> None:
    """Answer the client instead of the provider, in the provider's own error shape and with
    ``x-should-retry: false`` so SDKs raise at once. ``message`` reaches the client, the audit
    and the log: stages never put protected values or attack text in it, and what it quotes of
    the request (a field's location) is scrubbed by the DLP engine here as well."""
    scanner = dlp_scanner()
    if scanner is not None:
        message = scrub(scanner, message)
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


def fail_closed[H: Callable[..., Any]](stage: str) -> Callable[[H], H]:
    """Wrap a whole request hook (``request``, ``requestheaders``, ``http_connect``) so that an
    exception anywhere in it answers the client with a provider-shaped 502 and nothing goes
    upstream. mitmproxy's own handler would log the exception and forward the request.

    The log names the exception's type and where it was raised, never its message: messages
    of exceptions raised on client data can quote that data (a ``KeyError`` names the key).
    """

    def wrap(hook: H) -> H:
        if inspect.iscoroutinefunction(hook):

            @functools.wraps(hook)
            async def guarded_async(self: Any, flow: http.HTTPFlow) -> None:
                try:
                    await hook(self, flow)
                except Exception as exc:
                    _failed(flow, stage, exc)

            return guarded_async  # type: ignore[return-value]

        @functools.wraps(hook)
        def guarded(self: Any, flow: http.HTTPFlow) -> None:
            try:
                hook(self, flow)
            except Exception as exc:
                _failed(flow, stage, exc)

        return guarded  # type: ignore[return-value]

    return wrap


def described(exc: BaseException) -> str:
    """An exception for the log: its type and where it was raised, never its message (one raised
    on a response or a prompt can quote it: a ``KeyError`` names the key)."""
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    return type(exc).__name__ + (f" at {Path(frame.filename).name}:{frame.lineno}" if frame else "")


def contained[H: Callable[..., Any]](stage: str) -> Callable[[H], H]:
    """Wrap a hook that does not decide whether a request goes (a response, error or connection
    hook): an exception is logged by :func:`described` and goes no further. mitmproxy's own
    handler would log its message and traceback, which can quote client or provider text."""

    def wrap(hook: H) -> H:
        @functools.wraps(hook)
        def guarded(self: Any, *args: Any) -> Any:
            try:
                return hook(self, *args)
            except Exception as exc:
                log.error("%s: %s failed (%s)", stage, hook.__name__, described(exc))
                return None

        return guarded  # type: ignore[return-value]

    return wrap


def _failed(flow: http.HTTPFlow, stage: str, exc: Exception) -> None:
    transit = transit_of(flow)
    log.error(
        "%s stage failed (%s) for exchange %s; the request was not sent",
        stage,
        described(exc),
        transit.record.id if transit else "-",
    )
    if transit is not None and transit.refused and flow.response is not None:
        return  # the stage had already refused the request: that answer stands
    message = "the gateway failed while checking this request; it was not sent"
    try:
        if transit is None:
            raise LookupError("no transit")
        transit.event(stage, "failed", error=type(exc).__name__)
        refuse(flow, transit, 502, Refusal.GATEWAY, message, stage)
    except Exception:
        body = json.dumps({"error": {"type": "gateway_error", "message": message}}).encode()
        flow.response = http.Response.make(
            502,
            body,
            {"content-type": "application/json", "x-should-retry": "false"},
        )


def text_size(exchange: Exchange) -> int:
    """Characters of text the stages scan in ``exchange``."""
    return sum(len(s.text) for s in exchange.segments)


async def off_loop[T](exchange: Exchange, work: Callable[..., T], *args: Any) -> T:
    """Run ``work(*args)`` on the exchange's text: inline when the prompt is small, in a worker
    thread when it is large, so one huge prompt never stalls every other flow. (Scanning
    stages send huge prompts to a process of their own: see :mod:`tollhouse.scanproc`.)"""
    if text_size(exchange) > THREAD_THRESHOLD:
        # A scanning thread keeps the GIL until the interpreter asks it to switch (5 ms by
        # default); the loop waits that long at each wake-up of every other client's request.
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
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
