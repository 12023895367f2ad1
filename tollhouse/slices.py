"""Regex searches in bounded slices, so that no single call runs long.

Python's ``re`` holds the GIL for the whole of one call: a ``search`` (or one step of a
``finditer``) over a megabyte that finds nothing, or that reads far ahead at every position,
stalls the event loop and every other thread for as long as it runs. Here a search over
``[start, end)`` is made of calls on slices of at most ``step + overlap`` characters.

A match that starts inside a slice's first ``step`` characters and is at most ``overlap``
characters long (lookaheads included) is found exactly as a whole-text ``finditer`` finds it:
the slice holds all the text it can see. The next slice starts where the last match ended, or
where the last slice's ``step`` ended, as ``finditer`` would resume. Longer matches are cut at
the slice's end; callers choose ``overlap`` above the longest match they care about.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["OVERLAP", "STEP", "finditer", "search"]

STEP = 2048  # characters a slice starts matches in: a few hundred microseconds of regex
OVERLAP = 512  # characters past the step a match may reach


def finditer(
    pattern: Any,
    text: str,
    start: int = 0,
    end: int | None = None,
    step: int = STEP,
    overlap: int = OVERLAP,
) -> Iterator[Any]:
    """Non-overlapping matches of ``pattern`` in ``text[start:end]``, left to right."""
    end = len(text) if end is None else min(end, len(text))
    pos, last = start, -1  # where the next slice starts; end of the last match yielded
    while pos < end:
        limit = pos + step
        stop = min(end, limit + overlap)
        resume = limit
        for m in pattern.finditer(text, pos, stop):
            if stop < end and m.start() >= limit:
                resume = m.start()  # found again, with its full context, by the next slice
                break
            if m.start() < last or (m.start() == last == m.end()):
                continue  # an empty match where the previous slice stopped
            yield m
            last = m.end()
        else:
            if stop >= end:
                return
            resume = max(limit, last)
        pos = max(resume, pos + 1)


def search(
    pattern: Any, text: str, start: int = 0, end: int | None = None, overlap: int = OVERLAP
) -> Any:
    """The first match of ``pattern`` in ``text[start:end]``, or None (see :func:`finditer`)."""
    return next(finditer(pattern, text, start, end, overlap=overlap), None)
