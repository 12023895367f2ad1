"""The AWS event stream framing (``application/vnd.amazon.eventstream``), as Bedrock streams use it.

A frame is::

    total length u32 | headers length u32 | prelude CRC u32 | headers | payload | message CRC u32

all big-endian; the prelude CRC covers the first 8 bytes, the message CRC everything before it.
A header is ``name length u8 | name | type u8 | value``. The decoder checks both CRCs; the encoder
(used by the fake provider and tests) writes string headers only, as Bedrock does.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from dataclasses import dataclass

_PRELUDE = 12
_MIN_FRAME = _PRELUDE + 4
MAX_FRAME = 24 * 1024 * 1024  # AWS caps payloads at 16 MiB and headers at 128 KiB


class EventStreamError(ValueError):
    """The stream is not valid AWS event stream framing (bad length or CRC)."""


HeaderValue = bool | int | bytes | str | uuid.UUID


@dataclass(frozen=True, slots=True)
class EventMessage:
    """One decoded frame."""

    headers: dict[str, HeaderValue]
    payload: bytes

    @property
    def event_type(self) -> str | None:
        """``:event-type`` (``chunk``, ``contentBlockDelta``, ``metadata``, ...)."""
        value = self.headers.get(":event-type")
        return value if isinstance(value, str) else None

    @property
    def message_type(self) -> str | None:
        """``:message-type``: ``event``, ``exception`` or ``error``."""
        value = self.headers.get(":message-type")
        return value if isinstance(value, str) else None


def encode(headers: dict[str, str], payload: bytes) -> bytes:
    """One frame with string headers (type 7) and ``payload``."""
    head = bytearray()
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        head += struct.pack(">B", len(raw_name)) + raw_name
        head += struct.pack(">BH", 7, len(raw_value)) + raw_value
    total = _PRELUDE + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + bytes(head) + payload
    return message + struct.pack(">I", zlib.crc32(message))


def encode_event(event_type: str, payload: bytes, content_type: str = "application/json") -> bytes:
    """A frame as Bedrock sends an event: ``:event-type``, ``:content-type``, ``:message-type``."""
    return encode(
        {":event-type": event_type, ":content-type": content_type, ":message-type": "event"},
        payload,
    )


def encode_exception(exception_type: str, payload: bytes) -> bytes:
    """A frame as Bedrock sends a modelled error in the middle of a stream."""
    return encode(
        {
            ":exception-type": exception_type,
            ":content-type": "application/json",
            ":message-type": "exception",
        },
        payload,
    )


class EventStreamDecoder:
    """Feed bytes, get complete frames. Holds only the bytes of the frame not yet complete."""

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending_size(self) -> int:
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[EventMessage]:
        """The frames ``chunk`` completes. Raises :class:`EventStreamError` on bad framing."""
        self._buf += chunk
        messages: list[EventMessage] = []
        pos = 0
        buf = self._buf
        while len(buf) - pos >= _PRELUDE:
            total, head_len, prelude_crc = struct.unpack_from(">III", buf, pos)
            if zlib.crc32(buf[pos : pos + 8]) != prelude_crc:
                raise EventStreamError("prelude CRC mismatch")
            if not _MIN_FRAME <= total <= MAX_FRAME or head_len > total - _MIN_FRAME:
                raise EventStreamError(f"bad frame length {total} (headers {head_len})")
            if len(buf) - pos < total:
                break
            frame = bytes(buf[pos : pos + total])
            (message_crc,) = struct.unpack_from(">I", frame, total - 4)
            if zlib.crc32(frame[:-4]) != message_crc:
                raise EventStreamError("message CRC mismatch")
            headers = _headers(frame[_PRELUDE : _PRELUDE + head_len])
            messages.append(EventMessage(headers, frame[_PRELUDE + head_len : -4]))
            pos += total
        if pos:
            del buf[:pos]
        return messages

    def close(self) -> None:
        """The stream ended. Raises :class:`EventStreamError` if a frame was cut short."""
        if self._buf:
            size = len(self._buf)
            self._buf.clear()
            raise EventStreamError(f"stream ended inside a frame ({size} bytes left)")


_FIXED = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}


def _headers(raw: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    pos = 0
    try:
        while pos < len(raw):
            name_len = raw[pos]
            name = raw[pos + 1 : pos + 1 + name_len].decode()
            pos += 1 + name_len
            kind = raw[pos]
            pos += 1
            value: HeaderValue
            if kind in (0, 1):
                value = kind == 0
            elif kind in _FIXED:
                fmt = _FIXED[kind]
                (value,) = struct.unpack_from(fmt, raw, pos)
                pos += struct.calcsize(fmt)
            elif kind in (6, 7):
                (length,) = struct.unpack_from(">H", raw, pos)
                data = raw[pos + 2 : pos + 2 + length]
                if len(data) != length:
                    raise EventStreamError("header value cut short")
                value = data.decode() if kind == 7 else data
                pos += 2 + length
            elif kind == 9:
                value = uuid.UUID(bytes=raw[pos : pos + 16])
                pos += 16
            else:
                raise EventStreamError(f"unknown header type {kind}")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError, ValueError) as e:
        if isinstance(e, EventStreamError):
            raise
        raise EventStreamError("malformed headers") from None
    return headers
