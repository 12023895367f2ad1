"""Webhook notifications, sent from a background thread: the request path only enqueues."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.request
from typing import Any

log = logging.getLogger("tollhouse.budget")

_STOP = object()


class Notifier:
    """POSTs JSON payloads to ``url`` one at a time, retrying a failed post a few times."""

    def __init__(self, url: str, *, timeout: float = 5.0, attempts: int = 3) -> None:
        self.url, self.timeout, self.attempts = url, timeout, attempts
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=1000)
        self._thread = threading.Thread(target=self._run, name="tollhouse-notify", daemon=True)
        self._thread.start()

    def notify(self, payload: dict[str, Any]) -> None:
        """Queue ``payload``; never blocks (a full queue drops it, with a log line)."""
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            log.error("budget notification queue is full; dropped %s", payload.get("budget"))

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to ``timeout`` seconds), then stop the thread."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (payload := self._queue.get()) is not _STOP:
            self._post(payload)

    def _post(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(  # noqa: S310 - the URL is validated as http(s)
                self.url,
                data=body,
                method="POST",
                headers={"content-type": "application/json", "user-agent": "tollhouse"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as reply:  # noqa: S310
                    reply.read()
                return
            except OSError as exc:
                log.warning("budget webhook %s failed (attempt %d): %s", self.url, attempt, exc)
                time.sleep(0.5 * attempt)
        log.error("budget webhook %s: gave up on %s", self.url, payload.get("budget"))
