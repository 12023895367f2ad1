"""The wire engine reads a request body the one way a provider will, or refuses it."""

import gzip
import zlib

import brotli
import pytest

from tollhouse import wire
from tollhouse.wire import BodyError, decode_body

SECRET = "AKIA" + "Q3EGRN7YW5XTPLZB"
BODY = f'{{"messages":[{{"role":"user","content":"key {SECRET}"}}]}}'.encode()
JSON = {"content-type": "application/json"}


def headers(encoding: str = "", content_type: str = "application/json") -> dict[str, str]:
    out = {"content-type": content_type}
    if encoding:
        out["content-encoding"] = encoding
    return out


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-15)
    return c.compress(data) + c.flush()


def zstd_compress(data: bytes) -> bytes:
    return wire.zstd.compress(data)


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", raw_deflate),
        ("br", brotli.compress),
        ("zstd", zstd_compress),
        ("identity", lambda b: b),
        ("GZIP", gzip.compress),
    ],
)
def test_each_supported_encoding_is_decoded(encoding, encode):
    assert decode_body(encode(BODY), headers(encoding)) == BODY


def test_a_chain_is_undone_last_coding_first():
    raw = brotli.compress(gzip.compress(BODY))
    assert decode_body(raw, headers("gzip, br")) == BODY
    assert decode_body(gzip.compress(gzip.compress(BODY)), headers("gzip, gzip")) == BODY


def test_every_gzip_member_is_decoded():
    first, second = BODY[:20], BODY[20:]
    assert decode_body(gzip.compress(first) + gzip.compress(second), headers("gzip")) == BODY


def test_every_zstd_frame_is_decoded():
    raw = zstd_compress(BODY[:20]) + zstd_compress(BODY[20:])
    assert decode_body(raw, headers("zstd")) == BODY


@pytest.mark.parametrize(
    ("encoding", "raw", "reason"),
    [
        ("gzip", gzip.compress(b"{}") + BODY, "trailing bytes after the gzip body"),
        ("gzip", gzip.compress(b"{}") + b"\0\0\0\0", "trailing bytes after the gzip body"),
        ("gzip", gzip.compress(BODY)[:-6], "the gzip body is truncated"),
        ("gzip", b"\x1f\x8b" + BODY, "the gzip body could not be decoded"),
        ("gzip", BODY, "the gzip body could not be decoded"),
        ("zstd", BODY, "the zstd body could not be decoded"),
        ("deflate", zlib.compress(b"{}") + BODY, "trailing bytes after the deflate body"),
        ("deflate", raw_deflate(b"{}") + BODY, "trailing bytes after the deflate body"),
        ("deflate", BODY, "the deflate body could not be decoded"),
        ("br", brotli.compress(b"{}") + BODY, "the br body could not be decoded"),
        ("zstd", zstd_compress(b"{}") + BODY, "trailing bytes after the zstd body"),
        ("zstd", zstd_compress(BODY)[:-3], "the zstd body is truncated"),
    ],
)
def test_bytes_the_decoder_did_not_read_are_refused(encoding, raw, reason):
    with pytest.raises(BodyError, match=reason) as err:
        decode_body(raw, headers(encoding))
    assert SECRET not in str(err.value)


@pytest.mark.parametrize(
    ("encoding", "named"),
    [
        ("compress", "content-encoding compress is not supported"),
        (SECRET, "an unknown content-encoding is not supported"),
        ("gzip, " + SECRET, "an unknown content-encoding"),
        ("gzip, gzip, gzip, gzip, gzip", "more than 4 content-encodings"),
    ],
)
def test_an_encoding_the_gateway_cannot_decode_is_refused_and_never_echoed(encoding, named):
    with pytest.raises(BodyError, match=named) as err:
        decode_body(gzip.compress(BODY), headers(encoding))
    assert SECRET not in str(err.value)


@pytest.mark.parametrize(
    ("name", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", raw_deflate),
        ("br", brotli.compress),
        ("zstd", zstd_compress),
    ],
)
def test_a_decompression_bomb_is_refused_at_the_limit(name, encode):
    bomb = encode(b"\0" * (2 * 1024 * 1024 + 1))
    assert len(bomb) < 64 * 1024
    with pytest.raises(BodyError, match="larger than 2 MiB"):
        decode_body(bomb, headers(name), limit=2 * 1024 * 1024)
    assert decode_body(encode(b"\0" * 1024), headers(name), limit=1024) == b"\0" * 1024


def test_a_bomb_inside_a_chain_is_bounded_at_each_step():
    bomb = gzip.compress(gzip.compress(b"\0" * (3 * 1024 * 1024)))
    with pytest.raises(BodyError, match="larger than 1 MiB"):
        decode_body(bomb, headers("gzip, gzip"), limit=1024 * 1024)


@pytest.mark.parametrize(
    ("charset", "encode"),
    [
        ("utf-8", "utf-8"),
        ("UTF-8", "utf-8"),
        ('"utf-8"', "utf-8"),
        ("us-ascii", "ascii"),
        ("utf-16", "utf-16"),
        ("utf-16le", "utf-16-le"),
        ("utf-16be", "utf-16-be"),
        ("utf-32", "utf-32"),
        ("utf-32le", "utf-32-le"),
    ],
)
def test_unicode_charsets_are_accepted(charset, encode):
    body = BODY.decode().encode(encode)
    assert decode_body(body, headers(content_type=f"application/json; charset={charset}")) == body


@pytest.mark.parametrize(
    ("charset", "named"),
    [
        ("utf-7", "charset utf-7 is not accepted"),
        ("latin-1", "charset iso8859-1 is not accepted"),
        ("shift_jis", "charset shift_jis is not accepted"),
        ("cp1252", "charset cp1252 is not accepted"),
        (SECRET, "an unknown charset is not accepted"),
    ],
)
def test_other_charsets_are_refused_and_never_echoed(charset, named):
    with pytest.raises(BodyError, match=named) as err:
        decode_body(BODY, headers(content_type=f"application/json; charset={charset}"))
    assert SECRET not in str(err.value)


def test_a_repeated_charset_is_refused():
    with pytest.raises(BodyError, match="more than one charset"):
        decode_body(BODY, headers(content_type="application/json; charset=utf-8; charset=utf-7"))


def test_a_body_that_is_not_its_declared_charset_is_refused():
    with pytest.raises(BodyError, match="not valid utf-8"):
        decode_body(b'{"a":"\xff"}', headers(content_type="text/plain; charset=utf-8"))
    # UTF-8 JSON declared as UTF-16: the provider would read other characters than we scanned
    with pytest.raises(BodyError, match="not utf-16"):
        decode_body(b'{"a":"bc"}', headers(content_type="application/json; charset=utf-16"))
    with pytest.raises(BodyError, match="not utf-16-le"):
        body = BODY.decode().encode("utf-16-be")
        decode_body(body, headers(content_type="application/json; charset=utf-16le"))


def test_the_charset_is_checked_after_decoding():
    body = BODY.decode().encode("utf-16")
    raw = gzip.compress(body)
    assert decode_body(raw, headers("gzip", "application/json; charset=utf-16")) == body


def multipart(part_headers: str) -> tuple[bytes, str]:
    body = (
        "--XyZ\r\n"
        'Content-Disposition: form-data; name="purpose"\r\n'
        f"{part_headers}\r\n"
        f"key {SECRET}\r\n"
        "--XyZ--\r\n"
    ).encode()
    return body, "multipart/form-data; boundary=XyZ"


def test_multipart_parts_with_a_unicode_charset_pass():
    body, ctype = multipart("Content-Type: text/plain; charset=utf-8\r\n")
    assert decode_body(body, headers(content_type=ctype)) == body
    body, ctype = multipart("")
    assert decode_body(body, headers(content_type=ctype)) == body


@pytest.mark.parametrize(
    ("part", "reason"),
    [
        ("Content-Type: text/plain; charset=utf-7\r\n", "charset utf-7"),
        ("Content-Transfer-Encoding: quoted-printable\r\n", "content-transfer-encoding"),
        ("Content-Transfer-Encoding: base64\r\n", "content-transfer-encoding"),
    ],
)
def test_a_multipart_part_the_scanner_would_misread_is_refused(part, reason):
    body, ctype = multipart(part)
    with pytest.raises(BodyError, match=reason):
        decode_body(body, headers(content_type=ctype))


def test_a_multipart_charset_on_the_whole_body_is_checked():
    body, ctype = multipart("")
    with pytest.raises(BodyError, match="charset utf-7"):
        decode_body(body, headers(content_type=ctype + "; charset=utf-7"))


def test_media_params_keep_quoted_semicolons_and_repeats():
    media, params = wire.media_params('Multipart/Form-Data; boundary="a;b"; charset=x; charset=y')
    assert media == "multipart/form-data"
    assert params == [("boundary", "a;b"), ("charset", "x"), ("charset", "y")]
