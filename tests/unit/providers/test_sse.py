"""The incremental SSE parser: line endings, comments, multi-line data, any chunk boundary."""

from __future__ import annotations

import pytest

from tollhouse.providers.sse import SseEvent, SseParser

MIXED = (
    b": welcome comment\r\n"
    b"event: greeting\r\n"
    b"data: hello\r\n"
    b"\r\n"
    b"data: line one\n"
    b"data: line two\n"
    b"id: 7\n"
    b"\n"
    b"event: cr-only\r"
    b"data:no-space\r"
    b"\r"
    b'data: {"text": "h\xc3\xa9llo \xe2\x9c\x93"}\r\n'
    b"\r\n"
    b"\n"
    b"data\n"
    b"\n"
    b"retry: 3000\n"
    b"data: last\n"
    b"\n"
)

EXPECTED = [
    ("greeting", "hello", None),
    (None, "line one\nline two", "7"),
    ("cr-only", "no-space", None),
    (None, '{"text": "héllo ✓"}', None),
    (None, "", None),  # the stray blank line
    (None, "", None),  # "data" with no colon: a data field with an empty value
    (None, "last", None),
]


def _parse(data: bytes, size: int) -> list[SseEvent]:
    parser = SseParser()
    events: list[SseEvent] = []
    for i in range(0, len(data), size):
        events += parser.feed(data[i : i + size])
    events += parser.close()
    return events


def _summary(events: list[SseEvent]) -> list[tuple[str | None, str, str | None]]:
    return [(e.event, e.data, e.id) for e in events]


def test_parses_every_kind_of_line() -> None:
    events = _parse(MIXED, len(MIXED))
    assert _summary(events) == EXPECTED
    assert b"".join(e.raw for e in events) == MIXED


def test_raw_bytes_of_each_event_are_exact() -> None:
    events = _parse(MIXED, len(MIXED))
    assert events[0].raw == b": welcome comment\r\nevent: greeting\r\ndata: hello\r\n\r\n"
    assert events[2].raw == b"event: cr-only\rdata:no-space\r\r"


@pytest.mark.parametrize("split", range(1, len(MIXED)))
def test_every_split_point(split: int) -> None:
    parser = SseParser()
    events = parser.feed(MIXED[:split]) + parser.feed(MIXED[split:]) + parser.close()
    assert _summary(events) == EXPECTED
    assert b"".join(e.raw for e in events) == MIXED


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 11])
def test_small_chunks(size: int) -> None:
    events = _parse(MIXED, size)
    assert _summary(events) == EXPECTED
    assert b"".join(e.raw for e in events) == MIXED


def test_holds_only_the_incomplete_event() -> None:
    parser = SseParser()
    assert parser.feed(b"data: one\n\ndata: tw") == [SseEvent(None, "one", b"data: one\n\n")]
    assert parser.pending_size == len(b"data: tw")
    assert parser.feed(b"o\n\n")[0].data == "two"
    assert parser.pending_size == 0


def test_trailing_cr_waits_for_a_possible_lf() -> None:
    parser = SseParser()
    assert parser.feed(b"data: x\r\n\r") == []  # the last CR may be half of CRLF
    (event,) = parser.feed(b"\n")
    assert event.raw == b"data: x\r\n\r\n"
    assert parser.close() == []


def test_event_without_final_blank_line_is_returned_on_close() -> None:
    parser = SseParser()
    assert parser.feed(b"data: [DONE]") == []
    (event,) = parser.close()
    assert (event.data, event.raw) == ("[DONE]", b"data: [DONE]")


def test_byte_order_mark_is_ignored() -> None:
    (event,) = _parse(b"\xef\xbb\xbfdata: x\n\n", 1)
    assert event.data == "x"


def test_take_pending_hands_over_held_bytes() -> None:
    parser = SseParser()
    parser.feed(b"data: partial")
    assert parser.take_pending() == b"data: partial"
    assert parser.pending_size == 0
    assert parser.feed(b"data: next\n\n")[0].data == "next"
