"""The incremental JSON array reader used for Gemini streams without alt=sse."""

from __future__ import annotations

import json

import pytest

from tollhouse.providers.jsonstream import JsonArrayParser

ELEMENTS = [
    {"candidates": [{"content": {"parts": [{"text": 'brace } and [ bracket " quote \\ back'}]}}]},
    {"text": 'ünïcode ✓ \\" {'},
    {"usageMetadata": {"promptTokenCount": 4, "nested": [[1, 2], {"a": "]"}]}},
]
DATA = ("[" + ",\r\n".join(json.dumps(e, ensure_ascii=False) for e in ELEMENTS) + "]").encode()


@pytest.mark.parametrize("split", range(1, len(DATA)))
def test_every_split_point(split: int) -> None:
    parser = JsonArrayParser()
    assert parser.feed(DATA[:split]) + parser.feed(DATA[split:]) == ELEMENTS


def test_one_byte_chunks_and_bounded_buffer() -> None:
    parser = JsonArrayParser()
    out = []
    biggest = max(len(json.dumps(e, ensure_ascii=False).encode()) for e in ELEMENTS)
    for i in range(len(DATA)):
        out += parser.feed(DATA[i : i + 1])
        assert parser.pending_size <= biggest
    assert out == ELEMENTS
    assert parser.pending_size == 0
