"""Decompression of Parquet pages by the file's codec (parquet.thrift's CompressionCodec).

Snappy (pyarrow's, Spark's and Firehose's default) and LZ4_RAW are short formats, read here in Python; zstd
(ClickHouse's default, so Langfuse's) through backports.zstd (Python 3.14's compression.zstd), imported on its
first page; gzip through zlib. LZO, Brotli and Hadoop's framed LZ4 are not read: a file using them is one letter that names the codec.
"""

from __future__ import annotations

import zlib
from typing import Any

from .thrift_compact import varint

CODECS = {0: "UNCOMPRESSED", 1: "SNAPPY", 2: "GZIP", 3: "LZO", 4: "BROTLI", 5: "LZ4", 6: "ZSTD", 7: "LZ4_RAW"}


class CodecError(ValueError):
    """A page that its codec cannot inflate, or (``unsupported``) a codec not read here."""

    def __init__(self, message: str, unsupported: bool = False):
        super().__init__(message)
        self.unsupported = unsupported


def decompress(codec: int, data: bytes, size: int) -> bytes:
    """``data`` inflated to the page's ``size`` bytes."""
    if codec == 0:
        return data
    if codec == 1:
        out = snappy(data, size)
    elif codec == 2:
        inflater = zlib.decompressobj(47)  # gzip or zlib header, told by its bytes
        out = inflater.decompress(data, size + 1)  # (never more than the header says, plus one to tell)
    elif codec == 6:
        out = _zstd(data, size)
    elif codec == 7:
        out = lz4_block(data, size)
    else:
        raise CodecError(f"pages compressed with {CODECS.get(codec, codec)}, which count_tokens does not read "
                         "(it reads SNAPPY, GZIP, ZSTD and LZ4_RAW)", unsupported=True)
    if len(out) != size:
        raise CodecError(f"a page inflated to {len(out):,} bytes where its header says {size:,}")
    return out


def zstd_module() -> Any:
    """Python 3.14's compression.zstd, else backports.zstd (the same API): imported only where data is zstd, so
    count_tokens' cold start does not pay for it."""
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        from backports import zstd
    return zstd


def _zstd(data: bytes, size: int) -> bytes:
    zstd = zstd_module()
    decompressor = zstd.ZstdDecompressor()
    try:
        out = decompressor.decompress(data, max_length=size)
    except zstd.ZstdError as exc:
        raise CodecError(f"zstd: {exc}") from None
    if not decompressor.eof:
        raise CodecError(f"a zstd page inflates past the {size:,} bytes its header says")
    return out


def snappy(data: bytes, size: int) -> bytes:
    """A raw Snappy block (google/snappy format_description.txt): its length, then literals and back-references."""
    length, pos = varint(data, 0)
    if length != size:
        raise CodecError(f"a snappy block of {length:,} bytes where the page header says {size:,}")
    out = bytearray()
    end = len(data)
    while pos < end:
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            n = tag >> 2
            if n >= 60:
                width = n - 59
                n = int.from_bytes(data[pos:pos + width], "little")
                pos += width
            n += 1
            if pos + n > end:
                raise CodecError("snappy: a literal runs past the block")
            out += data[pos:pos + n]
            pos += n
        else:
            if kind == 1:
                n, offset = ((tag >> 2) & 7) + 4, ((tag >> 5) << 8) | data[pos]
                pos += 1
            else:
                width = 2 if kind == 2 else 4
                n, offset = (tag >> 2) + 1, int.from_bytes(data[pos:pos + width], "little")
                pos += width
            _copy(out, offset, n)
        if len(out) > length:
            break
    if len(out) != length:
        raise CodecError(f"snappy: {len(out):,} bytes where the block says {length:,}")
    return bytes(out)


def lz4_block(data: bytes, size: int) -> bytes:
    """One LZ4 block with no frame (lz4 Block_format.md), as Parquet's LZ4_RAW stores a page."""
    out = bytearray()
    pos, end = 0, len(data)
    while pos < end:
        token = data[pos]
        pos += 1
        n, pos = _lz4_length(data, pos, token >> 4)
        out += data[pos:pos + n]
        pos += n
        if pos >= end:  # the last sequence has literals only
            break
        offset = data[pos] | (data[pos + 1] << 8)
        pos += 2
        n, pos = _lz4_length(data, pos, token & 15)
        _copy(out, offset, n + 4)
        if len(out) > size:
            break  # (reported by the caller: more than the header says)
    return bytes(out)


def _lz4_length(data: bytes, pos: int, n: int) -> tuple[int, int]:
    if n == 15:
        while True:
            if pos >= len(data):
                raise CodecError("lz4: a length runs past the block")
            more = data[pos]
            pos += 1
            n += more
            if more != 255:
                break
    return n, pos


def _copy(out: bytearray, offset: int, n: int) -> None:
    """Appends ``n`` bytes from ``offset`` back; the source may overlap what is being written (a repeat)."""
    if not 0 < offset <= len(out):
        raise CodecError(f"a back-reference {offset:,} bytes back, with {len(out):,} written")
    start = len(out) - offset
    if offset >= n:
        out += out[start:start + n]
    else:
        pattern = bytes(out[start:])
        out += (pattern * (n // offset + 1))[:n]
