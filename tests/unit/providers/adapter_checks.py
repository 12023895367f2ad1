"""Shared checks for the provider adapter tests (imported by the test modules beside it)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from tollhouse.exchange import Exchange
from tollhouse.providers.base import Adapter, ParseError, Request, StreamReader
from tollhouse.providers.jsonbody import set_at

FIXTURES = Path(__file__).parent / "fixtures"
CHUNK_SIZES = (1, 2, 3, 5, 7, 13, 64, 1 << 20)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture(name))


def request(
    path: str,
    body: Any,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    host: str = "api.example.com",
) -> Request:
    raw = body if isinstance(body, bytes) else json.dumps(body, indent=1).encode()
    return Request(method, host, path, headers or {"content-type": "application/json"}, raw)


def parse(adapter: Adapter, path: str, body: Any, **kw: Any) -> Exchange:
    return adapter.parse("test", request(path, body, **kw))


def segments(exchange: Exchange) -> list[tuple[str, str, str]]:
    """(role, location, text) of every segment, for compact assertions."""
    return [(s.role, s.location, s.text) for s in exchange.segments]


def attachments(exchange: Exchange) -> list[tuple[str, str, str | None]]:
    return [(a.kind, _loc(a.path), a.media_type) for a in exchange.attachments]


def _loc(path: tuple[str | int, ...]) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def check_render_exact(
    adapter: Adapter,
    req: Request,
    *,
    change: Iterable[int] | None = None,
    model: str | None = None,
    model_in_body: Callable[[Any, str], None] | None = None,
) -> Exchange:
    """Change some segments (all by default) and the model, render, re-parse, and check that
    exactly those values changed and nothing else in the body did."""
    unchanged = adapter.parse("test", req)
    assert adapter.render(unchanged).body == req.body  # nothing changed: the very same bytes
    assert adapter.render(unchanged).path == req.path

    exchange = adapter.parse("test", req)
    original = json.loads(req.body)
    expected = copy.deepcopy(original)
    indexes = list(range(len(exchange.segments))) if change is None else list(change)
    assert indexes, "the fixture must have segments to change"
    for i in indexes:
        new = f"«changed {i}» ünïcode ✓"
        exchange.set_text(i, new)
        set_at(expected, exchange.segments[i].path, new)
    if model is not None:
        exchange.set_model(model)
        if model_in_body is not None:
            model_in_body(expected, model)
    rendered = adapter.render(exchange)
    assert json.loads(rendered.body) == expected
    assert "\\u" not in rendered.body.decode()  # ensure_ascii=False
    again = adapter.parse(
        "test", Request(req.method, req.host, rendered.path, req.headers, rendered.body)
    )
    before = adapter.parse("test", req)
    assert len(again.segments) == len(before.segments)
    for i, (old, new) in enumerate(zip(before.segments, again.segments, strict=True)):
        assert new.path == old.path and new.role == old.role
        assert new.text == (f"«changed {i}» ünïcode ✓" if i in indexes else old.text)
    if model is not None:
        assert again.model == model
    assert again.attachments == before.attachments
    return again


def run_stream(reader: StreamReader, data: bytes, size: int) -> bytes:
    """Feed ``data`` to ``reader`` in chunks of ``size``; return everything forwarded."""
    out = bytearray()
    for i in range(0, len(data), size):
        out += reader.feed(data[i : i + size])
    out += reader.close()
    return bytes(out)


def assert_parse_error(adapter: Adapter, path: str, body: Any, where: str, secret: str) -> None:
    """A malformed body raises ParseError naming the field and never quoting prompt text."""
    with pytest.raises(ParseError) as info:
        adapter.parse("test", request(path, body))
    message = str(info.value)
    assert message.startswith(where), message
    assert secret not in message
