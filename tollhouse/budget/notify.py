"""Webhook notifications, sent from a background thread: the request path only enqueues.

The webhook is the one URL the budgets file names: redirects are not followed (a POST turned into
a GET to wherever the answer points is not what finance configured), and the URL's path, which
for chat webhooks is the credential itself, never appears in a log line.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.request
from typing import Any

from tollhouse.budget.store import shown_url

log = logging.getLogger("tollhouse.budget")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx becomes an HTTPError: a failed post


class Notifier:
    """POSTs JSON payloads to ``url`` one at a time, retrying a failed post a few times."""

    def __init__(self, url: str, *, timeout: float = 5.0, attempts: int = 3) -> None:
        self.url, self.timeout, self.attempts = url, timeout, attempts
        self._shown = shown_url(url)
        self._opener = urllib.request.build_opener(_NoRedirects)
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=1000)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tollhouse-notify", daemon=True)
        self._thread.start()

    def notify(self, payload: dict[str, Any]) -> None:
        """Queue ``payload``; never blocks (a full queue drops it, with a log line)."""
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            log.error("budget notification queue is full; dropped %s", payload.get("budget"))

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to ``timeout`` seconds), then stop the thread. Never blocks
        longer than ``timeout``, even with a full queue and a webhook that does not answer."""
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            try:
                payload = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
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
                with self._opener.open(request, timeout=self.timeout) as reply:
                    reply.read()
                return
            except OSError as exc:  # urllib's messages name the status or reason, not the URL
                log.warning("budget webhook %s failed (attempt %d): %s", self._shown, attempt, exc)
                self._stop.wait(0.5 * attempt)  # closing: the remaining attempts without a pause
        log.error("budget webhook %s: gave up on %s", self._shown, payload.get("budget"))
