"""Scans of huge requests in a process of their own, so that no client waits on another's prompt.

The gateway is one event loop in one interpreter. A scan in a worker thread still takes the GIL
for every regex call it makes (Python's ``re`` and the hyperscan binding keep it for the whole
call), and each time the loop wakes up for another client it waits for that call to end: with a
megabyte of text, a small request waits hundreds of milliseconds. A separate process has a GIL
of its own. :class:`ScanProcess` keeps one worker process per stage, started on the first huge
request (most deployments never pay for it) and replaced when the policy changes; the worker
builds the stage's scanner from the same policy object the gateway loaded, so both always apply
the same rules.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from tollhouse.exchange import Attachment, Exchange, Segment

PROCESS_THRESHOLD = 256 * 1024
"""Characters of text above which a request is scanned in the worker process."""

NICENESS = 10
"""How much lower the worker's CPU priority is: on a busy machine the gateway's own process,
which serves every other client, goes first."""

_scanner: Any = None  # the worker process's scanner (built by _start)


def _start(build: bytes, policy: bytes) -> None:
    # Lower the priority before the heavy imports and the scanner build: the arguments arrive
    # pickled, so that unpickling them (which imports the engine) happens after this line.
    global _scanner
    os.nice(NICENESS)
    _scanner = pickle.loads(build)(pickle.loads(policy))  # noqa: S301 - our own objects


def _inspect(exchange: Exchange, policy_name: str | None) -> tuple[Any, dict[int, str]]:
    result = _scanner.inspect(exchange, policy_name).compact()
    return result, {i: exchange.segments[i].text for i in exchange.changed_segments}


def _check(exchange: Exchange, policy_name: str | None) -> Any:
    return _scanner.check(exchange, policy_name)


class ScanProcess:
    """One worker process that scans with ``build(policy)``: ``DlpScanner`` or
    ``InjectionScanner``. ``build`` and ``policy`` must be picklable (a class and a policy)."""

    def __init__(self, build: Callable[[Any], Any]) -> None:
        self._build = build
        self._policy: Any = None
        self._pool: ProcessPoolExecutor | None = None

    def use(self, policy: Any) -> None:
        """Scan with ``policy`` from now on (a worker with the old one is stopped)."""
        if policy is not self._policy:
            self._policy = policy
            self.close()

    async def inspect(self, exchange: Exchange, policy_name: str | None) -> Any:
        """DLP: ``scanner.inspect`` in the worker; rewritten segments are applied to
        ``exchange`` here, as if it had run in this process."""
        result, changed = await self._run(_inspect, _portable(exchange), policy_name)
        for index, text in changed.items():
            exchange.set_text(index, text)
        return result

    async def check(self, exchange: Exchange, policy_name: str | None) -> Any:
        """Injection: ``scanner.check`` in the worker."""
        return await self._run(_check, _portable(exchange), policy_name)

    async def _run(self, work: Callable[..., Any], *args: Any) -> Any:
        if self._pool is None:
            # spawn: the gateway has threads (audit writer, store), which fork would copy mid-step.
            context = multiprocessing.get_context("spawn")
            initargs = (pickle.dumps(self._build), pickle.dumps(self._policy))
            self._pool = ProcessPoolExecutor(
                1, mp_context=context, initializer=_start, initargs=initargs
            )
        pool = self._pool
        try:
            return await asyncio.wrap_future(pool.submit(work, *args))
        except BrokenProcessPool:
            if self._pool is pool:  # the next huge request starts a new worker
                self._pool = None
            raise

    def close(self) -> None:
        """Stop the worker (if one runs); the next huge request starts a new one."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _portable(exchange: Exchange) -> Exchange:
    """What a scanner reads of an exchange, without the parsed body (large, adapter-owned)."""
    return Exchange(
        provider=exchange.provider,
        api=exchange.api,
        operation=exchange.operation,
        path=exchange.path,
        model=exchange.model,
        segments=[Segment(s.role, s.path, s.text, s.form) for s in exchange.segments],
        attachments=[Attachment(a.kind, a.path, a.media_type) for a in exchange.attachments],
        unreadable=list(exchange.unreadable),
    )


__all__ = ["PROCESS_THRESHOLD", "ScanProcess"]
