"""Lifecycle: SIGHUP reloads the rules; SIGTERM drains (stop accepting, let exchanges in flight
finish up to a bound, flush the audit, exit 0).

mitmproxy's own SIGTERM handler stops at once: a stream in flight is cut, and its audit row is
never written because its ``response`` hook never runs. This stage replaces that handler once the
proxy is running (mitmproxy installs its own before the addons' ``running`` hook).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
import weakref

from mitmproxy import command, ctx, exceptions, http

from addons._flow import contained

log = logging.getLogger("tollhouse.lifecycle")
# After the last exchange's response hook, mitmproxy still writes the stream's end to the client.
SETTLE_SECONDS = 0.5


class Lifecycle:
    def __init__(self) -> None:
        self.in_flight: weakref.WeakSet[http.HTTPFlow] = weakref.WeakSet()
        self.draining = False
        self.reloaded_at: float | None = None  # last reload by SIGHUP or tollhouse.reload
        self._drain: asyncio.Task | None = None

    def load(self, loader):
        loader.add_option(
            "tollhouse_drain_seconds",
            int,
            30,
            "On SIGTERM, how long exchanges in flight may take to finish before the gateway exits.",
        )

    def running(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, self.reload)
            loop.add_signal_handler(signal.SIGTERM, self.drain)
        except (NotImplementedError, AttributeError, RuntimeError):
            # Windows has no SIGHUP and no loop signal handlers: mitmproxy's handler stays.
            log.debug("no signal handlers on this platform: no SIGHUP reload or SIGTERM drain")

    @command.command("tollhouse.reload")
    def reload(self) -> None:
        """Read the rules folder again. A stage whose file is now invalid keeps its last good
        policy and logs the file and line (see ``reload_policy``)."""
        log.info("reloading the rules in %s", ctx.options.tollhouse_rules)
        try:
            # Setting an option to its own value still tells every stage it was updated.
            ctx.options.update(tollhouse_rules=ctx.options.tollhouse_rules)
        except exceptions.OptionsError as exc:
            log.error("reload failed, the previous rules stay in force: %s", exc)
            return
        self.reloaded_at = time.time()
        log.info("rules reloaded")

    @command.command("tollhouse.drain")
    def drain(self) -> None:
        """Stop accepting connections, let exchanges in flight finish, then shut down."""
        if self.draining:
            return
        self.draining = True
        self._drain = asyncio.get_running_loop().create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        bound = max(0, ctx.options.tollhouse_drain_seconds)
        log.info(
            "draining: no new connections; %d exchange(s) in flight get up to %ss",
            len(self.in_flight),
            bound,
        )
        ctx.options.update(server=False)  # closes the listening sockets, not the connections
        deadline = time.monotonic() + bound
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        if self.in_flight:
            log.warning("drain bound reached: %d exchange(s) cut", len(self.in_flight))
        else:
            await asyncio.sleep(SETTLE_SECONDS)
        log.info("drained; flushing the audit and exiting")
        ctx.master.shutdown()  # the `done` hooks run next: the audit writer flushes and closes

    # ---- exchanges in flight ----------------------------------------------------------------

    @contained("lifecycle")
    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self.in_flight.add(flow)

    @contained("lifecycle")
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if self.draining and flow.response and flow.request.http_version.startswith("HTTP/1"):
            flow.response.headers["connection"] = "close"  # no next request on this connection

    @contained("lifecycle")
    def response(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None:  # a websocket is in flight until it ends
            self.in_flight.discard(flow)

    @contained("lifecycle")
    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self.in_flight.discard(flow)

    @contained("lifecycle")
    def error(self, flow: http.HTTPFlow) -> None:
        self.in_flight.discard(flow)
