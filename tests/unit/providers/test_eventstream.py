"""AWS event stream framing: encode, decode at any chunk boundary, CRC checks."""

from __future__ import annotations

import struct
import uuid
import zlib

import pytest

from tollhouse.providers.eventstream import (
    EventStreamDecoder,
    EventStreamError,
    encode,
    encode_event,
    encode_exception,
)

STREAM = (
    encode_event("messageStart", b'{"role":"assistant","p":"abcdefgh"}')
    + encode_event("contentBlockDelta", '{"delta":{"text":"héllo"},"contentBlockIndex":0}'.encode())
    + encode_event("metadata", b'{"usage":{"inputTokens":12,"outputTokens":3}}')
    + encode_exception("throttlingException", b'{"message":"slow down"}')
)


def _decode(data: bytes, size: int) -> list[tuple[str | None, str | None, bytes]]:
    decoder = EventStreamDecoder()
    out = []
    for i in range(0, len(data), size):
        out += [(m.event_type, m.message_type, m.payload) for m in decoder.feed(data[i : i + size])]
    decoder.close()
    return out


EXPECTED = [
    ("messageStart", "event", b'{"role":"assistant","p":"abcdefgh"}'),
    ("contentBlockDelta", "event", '{"delta":{"text":"héllo"},"contentBlockIndex":0}'.encode()),
    ("metadata", "event", b'{"usage":{"inputTokens":12,"outputTokens":3}}'),
    (None, "exception", b'{"message":"slow down"}'),
]


def test_round_trip() -> None:
    assert _decode(STREAM, len(STREAM)) == EXPECTED


@pytest.mark.parametrize("split", range(1, len(STREAM), 3))
def test_every_split_point(split: int) -> None:
    decoder = EventStreamDecoder()
    messages = decoder.feed(STREAM[:split]) + decoder.feed(STREAM[split:])
    assert [(m.event_type, m.message_type, m.payload) for m in messages] == EXPECTED


def test_one_byte_chunks() -> None:
    assert _decode(STREAM, 1) == EXPECTED


def test_frame_layout_matches_the_spec() -> None:
    frame = encode({":event-type": "chunk"}, b"{}")
    total, head_len, prelude_crc = struct.unpack(">III", frame[:12])
    assert total == len(frame)
    assert head_len == 1 + len(":event-type") + 1 + 2 + len("chunk")
    assert prelude_crc == zlib.crc32(frame[:8])
    assert struct.unpack(">I", frame[-4:])[0] == zlib.crc32(frame[:-4])


def test_bad_message_crc_is_rejected() -> None:
    frame = bytearray(encode_event("chunk", b'{"bytes":"e30="}'))
    frame[-6] ^= 0xFF  # a payload byte
    with pytest.raises(EventStreamError, match="message CRC"):
        EventStreamDecoder().feed(bytes(frame))


def test_bad_prelude_crc_is_rejected() -> None:
    frame = bytearray(encode_event("chunk", b"{}"))
    frame[3] ^= 0x01  # the total length
    with pytest.raises(EventStreamError, match="prelude CRC"):
        EventStreamDecoder().feed(bytes(frame))


def test_stream_cut_inside_a_frame() -> None:
    decoder = EventStreamDecoder()
    decoder.feed(STREAM[:20])
    with pytest.raises(EventStreamError, match="inside a frame"):
        decoder.close()


def test_every_header_type_decodes() -> None:
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    headers = (
        b"\x01t\x00"  # bool true
        + b"\x01f\x01"  # bool false
        + b"\x01b\x02\x7f"  # byte
        + b"\x01s\x03"
        + struct.pack(">h", -2)
        + b"\x01i\x04"
        + struct.pack(">i", 70000)
        + b"\x01l\x05"
        + struct.pack(">q", 1 << 40)
        + b"\x01y\x06"
        + struct.pack(">H", 3)
        + b"\x00\x01\x02"
        + b"\x01S\x07"
        + struct.pack(">H", 2)
        + b"ok"
        + b"\x01T\x08"
        + struct.pack(">q", 1700000000000)
        + b"\x01u\x09"
        + u.bytes
    )
    total = 12 + len(headers) + 4
    prelude = struct.pack(">II", total, len(headers))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + headers
    frame = message + struct.pack(">I", zlib.crc32(message))
    (decoded,) = EventStreamDecoder().feed(frame)
    assert decoded.headers == {
        "t": True,
        "f": False,
        "b": 127,
        "s": -2,
        "i": 70000,
        "l": 1 << 40,
        "y": b"\x00\x01\x02",
        "S": "ok",
        "T": 1700000000000,
        "u": u,
    }
    assert decoded.payload == b""
