"""The request body as the provider will read it: content-decoded in full, its charset checked.

The gateway scans one reading of a body and the provider reads another whenever the two can
disagree: a gzip body of two members of which only the first is decoded, a deflate stream with
bytes after its end, a charset the scanner does not decode the way the model does (UTF-7 turns
``+AEE-`` into ``A``). :func:`decode_body` refuses every such body instead of guessing, so the
wire stage can forward exactly the bytes that were scanned.

Errors are :class:`BodyError`; their messages name the encoding or charset, never the content,
and only from a fixed list of names (an unknown token is "unknown": it is client text).
"""

from __future__ import annotations

import codecs
import json
import zlib
from collections.abc import Callable, Mapping

import brotli

try:  # Python 3.14 has it in the standard library; mitmproxy depends on the backport before
    from compression import zstd  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the Python version
    from backports import zstd  # type: ignore[no-redef,unused-ignore]

MAX_DECODED = 64 * 1024 * 1024  # bytes of a decoded body; past it, a decompression bomb
MAX_CODINGS = 4  # content codings in one chain ("gzip, br" is two)

# Charsets whose bytes the scanner and every provider read alike: UTF-8 (ASCII is a subset),
# UTF-16 and UTF-32. Mapped to Python's codec names.
CHARSETS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "us-ascii": "ascii",
    "ascii": "ascii",
    "utf-16": "utf-16",
    "utf-16le": "utf-16-le",
    "utf-16be": "utf-16-be",
    "utf-32": "utf-32",
    "utf-32le": "utf-32-le",
    "utf-32be": "utf-32-be",
}
# Content codings that exist but that the gateway does not decode: named in the refusal.
KNOWN_UNSUPPORTED = frozenset(
    {"compress", "x-compress", "exi", "pack200-gzip", "aes128gcm", "dcb", "dcz", "xpress"}
)
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_JSON_TYPES = ("application/json", "application/jsonl", "application/x-ndjson", "text/json")


class BodyError(ValueError):
    """A request body the gateway cannot read the one way the provider will. The message names
    the encoding or charset at fault, never the body, and is safe to show and to log."""


def decode_body(raw: bytes, headers: Mapping[str, str], limit: int = MAX_DECODED) -> bytes:
    """``raw`` with its whole ``Content-Encoding`` chain undone, checked against its declared
    charset. ``headers`` has lower-case names. Raises :class:`BodyError`."""
    body = raw
    for coding in reversed(codings(headers.get("content-encoding", ""))):
        body = DECODERS[coding](body, limit)
    check_charset(body, headers.get("content-type", ""))
    return body


def codings(value: str) -> list[str]:
    """The content codings of a ``Content-Encoding`` value, in the order they were applied."""
    names = [c.strip().lower() for c in value.split(",")]
    names = [n for n in names if n and n != "identity"]
    if len(names) > MAX_CODINGS:
        raise BodyError(f"more than {MAX_CODINGS} content-encodings in a chain")
    for name in names:
        if name not in DECODERS:
            known = name if name in KNOWN_UNSUPPORTED else "an unknown content-encoding"
            raise BodyError(f"content-encoding {known} is not supported")
    return names


class _Undecodable(BodyError):
    """Not a valid stream of the coding tried (as opposed to a valid one that is too large)."""


def _too_large(limit: int) -> BodyError:
    return BodyError(f"the decoded body is larger than {limit // (1024 * 1024)} MiB")


def _inflate(data: bytes, wbits: int, limit: int, out: bytearray, what: str) -> bytes:
    """Inflate one zlib/gzip/raw-deflate stream into ``out``, bounded; the bytes after it."""
    stream = zlib.decompressobj(wbits)
    try:
        out += stream.decompress(data, limit - len(out) + 1)
        while not stream.eof and len(out) <= limit:
            piece = stream.decompress(stream.unconsumed_tail, limit - len(out) + 1)
            if not piece and not stream.unconsumed_tail:
                break
            out += piece
    except zlib.error:
        raise _Undecodable(f"the {what} body could not be decoded") from None
    if len(out) > limit:
        raise _too_large(limit)
    if not stream.eof:
        raise BodyError(f"the {what} body is truncated")
    return stream.unused_data


def decode_gzip(data: bytes, limit: int = MAX_DECODED) -> bytes:
    """Every member of a gzip body (``cat a.gz b.gz`` is one valid body); anything after the last
    member is refused, zero padding included."""
    out = bytearray()
    rest = data
    while rest:
        if not rest.startswith(_GZIP_MAGIC):
            if rest is data:
                raise BodyError("the gzip body could not be decoded")
            raise BodyError("trailing bytes after the gzip body")
        rest = _inflate(rest, 16 + zlib.MAX_WBITS, limit, out, "gzip")
    return bytes(out)


def _zlib_header(data: bytes) -> bool:
    return len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


def decode_deflate(data: bytes, limit: int = MAX_DECODED) -> bytes:
    """``deflate`` as sent in practice: zlib-wrapped (the standard) or raw (what some clients
    send). Bytes after the stream are refused."""
    if not data:
        return b""
    out = bytearray()
    try:
        rest = _inflate(
            data, zlib.MAX_WBITS if _zlib_header(data) else -zlib.MAX_WBITS, limit, out, "deflate"
        )
    except _Undecodable:
        if not _zlib_header(data):
            raise
        out.clear()  # a raw stream whose first bytes happen to look like a zlib header
        rest = _inflate(data, -zlib.MAX_WBITS, limit, out, "deflate")
    if rest:
        raise BodyError("trailing bytes after the deflate body")
    return bytes(out)


def decode_brotli(data: bytes, limit: int = MAX_DECODED) -> bytes:
    if not data:
        return b""
    stream = brotli.Decompressor()
    out = bytearray()
    try:
        out += stream.process(data, output_buffer_limit=limit + 1)
        while not stream.can_accept_more_data() and len(out) <= limit:
            out += stream.process(b"", output_buffer_limit=limit + 1 - len(out))
    except brotli.error:  # also raised for bytes after the end of the stream
        raise BodyError("the br body could not be decoded") from None
    if len(out) > limit:
        raise _too_large(limit)
    if not stream.is_finished():
        raise BodyError("the br body is truncated")
    return bytes(out)


def decode_zstd(data: bytes, limit: int = MAX_DECODED) -> bytes:
    """Every frame of a zstd body (frames may be concatenated); anything else is refused."""
    out = bytearray()
    rest = data
    while rest:
        if not rest.startswith(_ZSTD_MAGIC):
            if rest is data:
                raise BodyError("the zstd body could not be decoded")
            raise BodyError("trailing bytes after the zstd body")
        stream = zstd.ZstdDecompressor()
        try:
            out += stream.decompress(rest, max_length=limit - len(out) + 1)
            while not stream.eof and not stream.needs_input and len(out) <= limit:
                out += stream.decompress(b"", max_length=limit - len(out) + 1)
        except zstd.ZstdError:
            raise BodyError("the zstd body could not be decoded") from None
        if len(out) > limit:
            raise _too_large(limit)
        if not stream.eof:
            raise BodyError("the zstd body is truncated")
        rest = stream.unused_data
    return bytes(out)


DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": decode_gzip,
    "x-gzip": decode_gzip,
    "deflate": decode_deflate,
    "br": decode_brotli,
    "zstd": decode_zstd,
}


def media_params(value: str) -> tuple[str, list[tuple[str, str]]]:
    """``text/plain; charset="utf-8"`` as ``("text/plain", [("charset", "utf-8")])``: the media
    type and its parameters (names lower-case, quotes removed), in order, repeats kept."""
    parts = _split_params(value)
    media = parts[0].strip().lower() if parts else ""
    params = []
    for part in parts[1:]:
        name, _, val = part.partition("=")
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params.append((name.strip().lower(), val))
    return media, params


def _split_params(value: str) -> list[str]:
    """Split on semicolons outside quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def charset_of(content_type: str) -> str | None:
    """The Python codec of a content type's declared charset, None if none is declared. An
    unaccepted, unknown or repeated charset is a :class:`BodyError`."""
    _, params = media_params(content_type)
    declared = [v for k, v in params if k == "charset"]
    if not declared:
        return None
    if len(declared) > 1:
        raise BodyError("the content type declares more than one charset")
    name = declared[0].strip().lower()
    if name in CHARSETS:
        return CHARSETS[name]
    try:  # name a known charset by its codec name (a fixed list), never echo the header
        known = f"charset {codecs.lookup(name).name}"
    except LookupError:
        known = "an unknown charset"
    raise BodyError(f"{known} is not accepted; send UTF-8, UTF-16 or UTF-32")


def check_charset(body: bytes, content_type: str) -> None:
    """The declared charset is one the scanner reads as the provider does, the body is valid in
    it and, for JSON, agrees with the encoding a JSON reader detects from the first bytes.
    Multipart parts are checked the same way."""
    media, _ = media_params(content_type)
    codec = charset_of(content_type)
    if codec is not None and body:
        try:
            body.decode(codec)
        except UnicodeDecodeError:
            raise BodyError(f"the body is not valid {codec}, its declared charset") from None
        is_json = media in _JSON_TYPES or media.endswith("+json")
        if is_json and not _same_encoding(codec, json.detect_encoding(body)):
            raise BodyError(f"the body is not {codec}, its declared charset")
    if media.startswith("multipart/"):
        check_multipart(body, content_type)


def _same_encoding(declared: str, detected: str) -> bool:
    """Same code unit width (8, 16, 32) and, where both name one, the same byte order."""

    def width(codec: str) -> int:
        return 32 if "32" in codec else 16 if "16" in codec else 8

    def order(codec: str) -> str | None:
        return codec[-2:] if codec.endswith(("-le", "-be")) else None

    a, b = order(declared), order(detected)
    return width(declared) == width(detected) and (a is None or b is None or a == b)


def check_multipart(body: bytes, content_type: str) -> None:
    """Each part of a multipart body: an accepted charset and no transfer encoding that hides its
    text from the scanner (quoted-printable, base64)."""
    boundary = next((v for k, v in media_params(content_type)[1] if k == "boundary"), "")
    if not boundary:
        raise BodyError("the multipart body has no boundary")
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        head, sep, _ = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        for line in head.split(b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-type":
                charset_of(value)
            elif name == "content-transfer-encoding" and value.strip().lower() not in (
                "7bit",
                "8bit",
                "binary",
            ):
                raise BodyError("a multipart part has a content-transfer-encoding")
