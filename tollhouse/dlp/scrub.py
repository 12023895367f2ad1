"""Scrub: client-supplied text made fit for the audit log and the gateway's log.

Paths, model names, JSON keys in error reasons and finding locations come from the client, and a
client can put a credential in any of them (``/v1/files/AKIA...``, ``{"AKIA...": 1}``). Before
such text is recorded or logged, every finding of every entity the DLP engine knows is replaced
by its type, ``[AWS_ACCESS_KEY_ID]``, whatever the policy would do with it in a prompt (even
``allow``: the audit log is not where a policy exception should leave a copy)::

    scrub(scanner, "/v1/files/AKIA...")   # "/v1/files/[AWS_ACCESS_KEY_ID]"
    scrub(None, "/v1/files/AKIA...")      # "[unscanned:3f2a9c1b7d4e]": no DLP stage to ask

The input is clipped first (:data:`SCRUB_LIMIT`) so the work is bounded, and :func:`scrub` never
raises: on any failure it returns a fingerprint, never the text.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from urllib.parse import unquote

from tollhouse.dlp.scanner import DlpScanner, resolve_overlaps

__all__ = ["SCRUB_LIMIT", "fingerprint", "scrub", "scrub_path"]

SCRUB_LIMIT = 4096  # characters of client text kept in one audit field or log line
# Scanned beyond the limit so that a value straddling it is still found whole before the cut.
_MARGIN = 512
_TRAILING_TOKEN = re.compile(r"\S+\Z")
_DECODE_ROUNDS = 4
# Fingerprints are keyed per process: equal values match within one run (one row can be tied to
# another), while an unkeyed hash of a guessable value (an email in a path) could be reversed.
_KEY = secrets.token_bytes(32)


def fingerprint(text: str, kind: str = "unscanned") -> str:
    """A fixed stand-in for ``text`` that reveals nothing of it: ``[kind:<12 hex digits>]``."""
    try:
        data = text.encode("utf-8", "surrogatepass")
    except Exception:  # not a str at all: fingerprint its type, never its repr
        data = type(text).__name__.encode()
    return f"[{kind}:{hmac.new(_KEY, data, hashlib.sha256).hexdigest()[:12]}]"


def scrub(scanner: DlpScanner | None, text: str) -> str:
    """``text`` with every entity the scanner detects replaced by ``[ENTITY_TYPE]``, clipped to
    :data:`SCRUB_LIMIT` characters. Without a scanner (the DLP stage is off), or if scanning
    fails, a :func:`fingerprint` instead. Never raises."""
    try:
        if scanner is None:
            return fingerprint(text)
        if not isinstance(text, str):
            return fingerprint(text, "unscannable")
        return _scrub(scanner, text)[0]
    except Exception:  # fail closed: an unscanned value is never returned
        return fingerprint(text, "unscannable")


def scrub_path(scanner: DlpScanner | None, path: str) -> str:
    """:func:`scrub` for a URL path, which may hide a value in percent-escapes (``%41KIA...``):
    if the decoded path holds an entity, the decoded path is kept, scrubbed. A path still
    escaped after a few rounds of decoding is fingerprinted. Never raises."""
    try:
        if scanner is None or not isinstance(path, str):
            return scrub(scanner, path)
        decoded = path
        for _ in range(_DECODE_ROUNDS):  # %2541 is %41 once decoded: decode until it is stable
            step = unquote(decoded, errors="replace")
            if step == decoded:
                break
            decoded = step
        else:
            return fingerprint(path, "unscannable")
        if decoded != path:
            scrubbed, found = _scrub(scanner, decoded)
            if found:
                return scrubbed
        return _scrub(scanner, path)[0]
    except Exception:
        return fingerprint(path, "unscannable")


def _scrub(scanner: DlpScanner, text: str) -> tuple[str, int]:
    """The scrubbed text and how many values were replaced."""
    window = text[: SCRUB_LIMIT + _MARGIN]
    detections = resolve_overlaps(scanner.detector.detect(window))
    # Right to left, so that the offsets still to apply stay valid.
    for d in sorted(detections, key=lambda d: d.start, reverse=True):
        window = window[: d.start] + f"[{d.entity}]" + window[d.end :]
    if len(text) <= SCRUB_LIMIT:
        return window, len(detections)
    # Cut: the token at the cut may be the start of a value too long to be detected whole (a
    # secret is a run without spaces), so it goes too; a 4 KiB run without one goes whole.
    kept = _TRAILING_TOKEN.sub("", window[:SCRUB_LIMIT])
    return kept + f"[... clipped: {len(text)} characters in all]", len(detections)
