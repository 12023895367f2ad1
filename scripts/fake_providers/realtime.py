"""Websockets for the fake provider (OpenAI / Azure Realtime, Gemini Live): the RFC 6455 handshake
and framing, by hand, stdlib only.

Any path upgrades when asked (a permissive upstream shows what a gateway lets through). Every
message the client sends is recorded, and answered with one text frame
``{"type": "fake.received", "bytes": N, "received": EVENT}`` (``EVENT``: the parsed JSON, or
null for a binary frame or text that is not JSON), so a client can also see what arrived. A ping
is answered with a pong, a close with a close carrying the same code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Callable
from typing import Any, BinaryIO

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_MESSAGE = 16 * 1024 * 1024

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

Record = Callable[[dict[str, Any]], None]


class ProtocolError(Exception):
    """The client broke the framing; the connection is dropped."""


def is_upgrade(headers: dict[str, str]) -> bool:
    """A websocket handshake (header names lower-case)."""
    return (
        headers.get("upgrade", "").lower() == "websocket"
        and "upgrade" in headers.get("connection", "").lower()
        and bool(headers.get("sec-websocket-key"))
    )


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def handshake(key: str) -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
    ).encode()


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final frame (server to client)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


def read_frame(rfile: BinaryIO) -> tuple[bool, int, bytes] | None:
    """``(fin, opcode, payload)`` of the next frame, unmasked; None at the end of the stream."""
    head = rfile.read(2)
    if len(head) < 2:
        return None
    fin, opcode = bool(head[0] & 0x80), head[0] & 0x0F
    masked, n = bool(head[1] & 0x80), head[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", _exact(rfile, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", _exact(rfile, 8))[0]
    if not masked:
        raise ProtocolError("client frames must be masked")
    if n > MAX_MESSAGE:
        raise ProtocolError("frame too large")
    mask = _exact(rfile, 4)
    data = _exact(rfile, n)
    return fin, opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def _exact(rfile: BinaryIO, n: int) -> bytes:
    data = rfile.read(n)
    if len(data) < n:
        raise ProtocolError("connection ended inside a frame")
    return data


def serve(rfile: BinaryIO, wfile: BinaryIO, key: str, record: Record) -> str:
    """Answer the handshake, then relay until a close or the end; returns how it ended."""
    wfile.write(handshake(key))
    wfile.flush()
    parts: list[bytes] = []
    kind = TEXT
    while True:
        got = read_frame(rfile)
        if got is None:
            return "ended without a close"
        fin, opcode, payload = got
        if opcode == PING:
            wfile.write(frame(PONG, payload))
        elif opcode == CLOSE:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
            reason = payload[2:].decode("utf-8", "replace")
            record({"opcode": "close", "code": code, "reason": reason, "payload": b""})
            wfile.write(frame(CLOSE, payload[:2]))
            wfile.flush()
            return f"closed ({code})"
        elif opcode in (TEXT, BINARY, CONTINUATION):
            if opcode != CONTINUATION:
                parts, kind = [], opcode
            parts.append(payload)
            if fin:
                _message(kind, b"".join(parts), wfile, record)
        wfile.flush()


def _message(kind: int, data: bytes, wfile: BinaryIO, record: Record) -> None:
    parsed = None
    if kind == TEXT:
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
    record({"opcode": "text" if kind == TEXT else "binary", "payload": data, "json": parsed})
    reply = {"type": "fake.received", "bytes": len(data), "received": parsed}
    wfile.write(frame(TEXT, json.dumps(reply).encode()))
