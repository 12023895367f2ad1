"""multipart/form-data, strictly: parts a server could read differently are refused.

Uploads (OpenAI files and audio, Gemini upload) arrive as multipart bodies. Each part keeps its
field name, file name and media type; the generic adapter scans the text parts and writes changed
parts back with :func:`render`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tollhouse.providers.base import ParseError

_BOUNDARY = re.compile(r'boundary="?([0-9A-Za-z\'()+_,./:=? -]{1,70})"?(?:;|$)')
_PARAM = re.compile(r'\s*;\s*([A-Za-z*]+)="((?:[^"\\]|\\.)*)"|\s*;\s*([A-Za-z*]+)=([^;\s]*)')
_PLAIN_ENCODINGS = frozenset({"", "7bit", "8bit", "binary"})


@dataclass(slots=True)
class Part:
    """One part: its form-field name, file name and media type, and its bytes."""

    name: str
    filename: str | None
    media_type: str | None
    content: bytes


def boundary_of(content_type: str) -> str:
    """The boundary parameter of a multipart Content-Type, or a ParseError."""
    m = _BOUNDARY.search(content_type)
    if m is None:
        raise ParseError("$: multipart body without a valid boundary")
    return m.group(1).rstrip(" ")


def parse(body: bytes, boundary: str) -> list[Part]:
    """The parts of ``body``. Anything outside the parts (a preamble or epilogue with content),
    a part without a form-data disposition, a Content-Transfer-Encoding that re-encodes the
    content, or a missing closing boundary is a ParseError."""
    delimiter = b"--" + boundary.encode()
    chunks = body.split(b"\r\n" + delimiter)
    first = chunks[0]
    if not first.startswith(delimiter):
        if first.strip() or len(chunks) < 2:
            raise ParseError("$: multipart body has content before its first part")
        chunks = chunks[1:]
    else:
        chunks[0] = first[len(delimiter) :]
    parts: list[Part] = []
    for i, chunk in enumerate(chunks):
        if chunk.startswith(b"--"):
            if chunk[2:].strip() or i != len(chunks) - 1:
                raise ParseError("$: multipart body has content after its closing boundary")
            return parts
        parts.append(_part(chunk, i))
    raise ParseError("$: multipart body without its closing boundary")


def _part(chunk: bytes, index: int) -> Part:
    if not chunk.startswith(b"\r\n"):
        raise ParseError(f"$[{index}]: malformed multipart boundary line")
    head, sep, content = chunk[2:].partition(b"\r\n\r\n")
    if not sep:
        raise ParseError(f"$[{index}]: multipart part without a header block")
    headers: dict[str, str] = {}
    try:
        lines = head.decode("utf-8", "strict").split("\r\n") if head else []
    except UnicodeDecodeError:
        raise ParseError(f"$[{index}]: multipart part headers are not UTF-8") from None
    for line in lines:
        name, colon, value = line.partition(":")
        key = name.strip().lower()
        if not colon or key in headers:
            raise ParseError(f"$[{index}]: malformed or repeated multipart part header")
        headers[key] = value.strip()
    if headers.get("content-transfer-encoding", "").lower() not in _PLAIN_ENCODINGS:
        raise ParseError(f"$[{index}]: multipart part with a content transfer encoding")
    disposition = headers.get("content-disposition", "")
    if not disposition.lower().startswith("form-data"):
        raise ParseError(f"$[{index}]: multipart part is not form-data")
    params = _params(disposition[len("form-data") :], index)
    if "name" not in params or "filename*" in params:
        raise ParseError(f"$[{index}]: multipart part needs one plain name (and filename)")
    return Part(params["name"], params.get("filename"), headers.get("content-type"), content)


def _params(text: str, index: int) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text.rstrip()):
        m = _PARAM.match(text, pos)
        if m is None:
            raise ParseError(f"$[{index}]: malformed Content-Disposition")
        key = (m.group(1) or m.group(3)).lower()
        value = m.group(2) if m.group(1) else m.group(4)
        if key in out:
            raise ParseError(f"$[{index}]: repeated Content-Disposition parameter")
        out[key] = re.sub(r"\\(.)", r"\1", value)
        pos = m.end()
    return out


def render(parts: list[Part], boundary: str) -> bytes:
    """``parts`` as a multipart/form-data body with ``boundary``."""
    out = bytearray()
    for part in parts:
        disposition = f'form-data; name="{_quote(part.name)}"'
        if part.filename is not None:
            disposition += f'; filename="{_quote(part.filename)}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if part.media_type:
            out += f"Content-Type: {part.media_type}\r\n".encode()
        out += b"\r\n" + part.content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def _quote(value: str) -> str:
    return re.sub(r'[\r\n"\\]', lambda m: "%22" if m.group() == '"' else " ", value)
