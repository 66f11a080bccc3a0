"""S3 objects compressed other than by gzip, inflated as they are read (s3_objects.py), told by their first bytes.

A Firehose delivery stream compresses what it writes to S3 as its `CompressionFormat` says: GZIP, SNAPPY (the
Snappy framing format, google/snappy framing_format.txt), HADOOP_SNAPPY (Hadoop's BlockCompressorStream: blocks of
big-endian lengths around raw Snappy) or ZIP (an archive of one file); log shippers write zstd (Vector's and Fluent
Bit's S3 outputs), and rotated log files are often bzip2 or xz. Read as text, such an object was garbage: a letter
per line, or one for the object. Text in UTF-16 (Windows PowerShell's ``Out-File`` and ``>``, .NET's
``Encoding.Unicode``: a byte order mark first) is no compression, but it is read the same way: as UTF-8.

Each is a raw stream here (``readinto``) under an ``io.BufferedReader``, so the object is read in chunks and never
whole; what its format says cannot be, a `CompressedError` (an OSError, as gzip's errors are), ends the reading with
one letter. Snappy is decoded by parquet_codecs.snappy (Python), zstd by backports.zstd (Python 3.14's
compression.zstd), imported only for an object that needs it.
"""

from __future__ import annotations

import codecs
import io
import struct
import zlib
from collections.abc import Callable
from typing import Any

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
SNAPPY_STREAM = b"\xff\x06\x00\x00sNaPpY"
ZIP_MAGIC = b"PK\x03\x04"
XZ_MAGIC = b"\xfd7zXZ\x00"
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_BZIP2_MAGICS = {b"BZh" + str(level).encode() for level in range(1, 10)}  # then a block's magic, "1AY&SY"
_SIGNATURES = (ZIP_MAGIC, b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06", b"")  # what may follow a member
_CHUNK = 1 << 16
_MAX_OUT = 1 << 20  # inflated per step at most
# Hadoop's codec writes blocks of its buffer size (256 KiB by default); past this a first "length" is no block's.
_HADOOP_MAX_BLOCK = 1 << 26


class CompressedError(OSError):
    """Compressed data its format says cannot be."""


def inflating(first: bytes, raw: Any) -> io.BufferedReader | None:
    """``raw`` (an object's bytes, of which ``first`` are its first) inflated as read, or None if it is in none of
    these formats (plain, or gzip: told apart before)."""
    if first.startswith(ZSTD_MAGIC):
        stream: io.RawIOBase = _zstd(raw)
    elif first.startswith(XZ_MAGIC):
        stream = _xz(raw)
    elif first[:4] in _BZIP2_MAGICS and first[4:10] == b"1AY&SY":
        stream = _bzip2(raw)
    elif first.startswith(SNAPPY_STREAM):
        stream = _SnappyFrames(raw)
    elif first.startswith(ZIP_MAGIC):
        stream = _ZipMembers(raw)
    elif _hadoop_snappy(first):
        stream = _HadoopSnappy(raw)
    elif first.startswith(UTF16_BOMS):
        stream = _Utf16(raw)
    else:
        return None
    return io.BufferedReader(stream, buffer_size=_CHUNK)


class _Inflating(io.RawIOBase):
    """A raw stream of what ``_more`` inflates, piece by piece (b"" at the end)."""

    def __init__(self, raw: Any):
        self.raw = raw
        self._pending = memoryview(b"")
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending and not self._ended:
            piece = self._more()
            if piece is None:
                self._ended = True
            else:
                self._pending = memoryview(piece)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _more(self) -> bytes | None:
        raise NotImplementedError

    def _fill(self, n: int) -> bytes:
        """``n`` bytes, fewer only at the object's end (a read may give fewer than it was asked for)."""
        data = self.raw.read(n)
        while len(data) < n and (more := self.raw.read(n - len(data))):
            data += more
        return data

    def _exactly(self, n: int, what: str) -> bytes:
        data = self._fill(n)
        if len(data) < n:
            raise CompressedError(f"the object ends inside {what}")
        return data


class _SnappyFrames(_Inflating):
    """The Snappy framing format: chunks of a type byte and a 3-byte little-endian length; compressed (0) and
    uncompressed (1) data after a 4-byte checksum, the stream identifier (255, again where streams were joined),
    padding and skippable chunks (128-254) passed over. The checksums are not checked (CRC-32C in Python would cost
    more than the inflating): a damaged chunk shows in its Snappy data or, at worst, in the JSON it inflates to."""

    def _more(self) -> bytes | None:
        while header := self._fill(4):
            if len(header) < 4:
                raise CompressedError("the object ends inside a chunk header")
            kind, length = header[0], int.from_bytes(header[1:], "little")
            body = self._exactly(length, "a chunk")
            if kind == 0:
                return _snappy_block(body[4:])
            if kind == 1:
                return body[4:]
            if kind == 0xFF:
                if body != SNAPPY_STREAM[4:]:
                    raise CompressedError("a Snappy stream identifier that is not sNaPpY")
            elif kind < 0x80:
                raise CompressedError(f"a Snappy chunk of reserved type {kind}")
        return None


class _HadoopSnappy(_Inflating):
    """Hadoop's block stream: per block its inflated length (4 bytes, big-endian), then raw Snappy chunks, each
    after its compressed length, until the block is whole."""

    def __init__(self, raw: Any):
        super().__init__(raw)
        self._left = 0  # of the current block, still to inflate

    def _more(self) -> bytes | None:
        while True:
            head = self._fill(4)
            if not head:
                if self._left:
                    raise CompressedError(f"the object ends {self._left:,} bytes short of a Snappy block")
                return None
            if len(head) < 4:
                raise CompressedError("the object ends inside a block header")
            (n,) = struct.unpack(">I", head)
            if not self._left:
                self._left = n  # a block begins: n is its inflated length; its first chunk follows
                if n == 0:
                    continue
                (n,) = struct.unpack(">I", self._exactly(4, "a chunk length"))
            piece = _snappy_block(self._exactly(n, "a Snappy chunk"))
            if len(piece) > self._left:
                raise CompressedError("a Snappy chunk inflates past its block")
            self._left -= len(piece)
            return piece


class _Streams(_Inflating):
    """Compressed streams one after another, each through a decompressor of its own (zstd frames, skippable ones
    passed over; bzip2 and xz streams, as `cat` joins them)."""

    def __init__(self, raw: Any, name: str, decompressor: Callable[[], Any], errors: tuple[type[Exception], ...]):
        super().__init__(raw)
        self._name, self._new, self._errors = name, decompressor, errors
        self._decompressor = decompressor()
        self._fed = False  # the decompressor has had some of a stream

    def _more(self) -> bytes | None:
        while True:
            decompressor = self._decompressor
            if decompressor.eof:  # a stream ended: the next begins with what it left over
                data = decompressor.unused_data or self.raw.read(_CHUNK)
                if not data:
                    return None
                self._decompressor = decompressor = self._new()
            elif decompressor.needs_input:
                data = self.raw.read(_CHUNK)
                if not data:
                    if self._fed:
                        raise CompressedError(f"the object ends inside a {self._name} stream")
                    return None
            else:
                data = b""  # more to give from what it has
            self._fed = True
            try:
                out = decompressor.decompress(data, _MAX_OUT)
            except self._errors as exc:
                raise CompressedError(f"{self._name}: {exc}") from None
            if out:
                return out


def _zstd(raw: Any) -> _Streams:
    from .parquet_codecs import zstd_module

    zstd = zstd_module()
    return _Streams(raw, "zstd", zstd.ZstdDecompressor, (zstd.ZstdError,))


def _bzip2(raw: Any) -> _Streams:
    import bz2

    return _Streams(raw, "bzip2", bz2.BZ2Decompressor, (OSError, ValueError))


def _xz(raw: Any) -> _Streams:
    import lzma

    return _Streams(raw, "xz", lzma.LZMADecompressor, (lzma.LZMAError,))


def utf16_as_utf8(text: io.BufferedReader) -> io.BufferedReader:
    """``text`` (UTF-16, its byte order mark first) as UTF-8, as read: for UTF-16 found inside a compressed object."""
    return io.BufferedReader(_Utf16(text), buffer_size=_CHUNK)


class _Utf16(_Inflating):
    """UTF-16 text as UTF-8, its byte order mark (which says which UTF-16) dropped; a code unit cut in two or a
    surrogate without its pair is a CompressedError, as damaged data is, after the text before it."""

    def __init__(self, raw: Any):
        super().__init__(raw)
        self._decoder = codecs.getincrementaldecoder("utf-16")()
        self._read_some = getattr(raw, "read1", None) or raw.read
        self._read = 0
        self._damage: CompressedError | None = None

    def _more(self) -> bytes | None:
        while self._damage is None:
            data = self._read_some(_CHUNK)
            first = self._read == 0
            self._read += len(data)
            try:
                text = self._decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                where = "the object ends inside a character" if not data else f"in its first {self._read:,} bytes"
                self._damage = CompressedError(f"utf-16: {exc.reason}, {where}")
                # What the decoder was given up to the damage (the byte order mark too, the first time) is good text.
                text = exc.object[:exc.start].decode("utf-16" if first else exc.encoding)
            if text:
                return text.encode()
            if not data and self._damage is None:
                return None
        raise self._damage


class _ZipMembers(_Inflating):
    """A ZIP archive's files one after another (a line break between two), read by their local headers, as the
    archive is written: stored or deflated; the central directory at its end ends it."""

    def __init__(self, raw: Any):
        super().__init__(raw)
        self._inflater: Any = None
        self._stored_left = 0
        self._members = 0
        self._descriptor = False

    def _more(self) -> bytes | None:
        while True:
            if self._inflater is not None:
                if not self._inflater.eof:
                    data = self._inflater.unconsumed_tail or self.raw.read(_CHUNK)
                    if not data:
                        raise CompressedError("the object ends inside a deflated ZIP member")
                    try:
                        out = self._inflater.decompress(data, _MAX_OUT)  # (bounded: a bomb inflates in steps)
                    except zlib.error as exc:
                        raise CompressedError(f"ZIP member: {exc}") from None
                    if out:
                        return out
                    continue
                rest, self._inflater = self._inflater.unused_data, None
                self._put_back(rest)
                if self._descriptor:
                    self._skip_descriptor()
                continue
            if self._stored_left:
                data = self.raw.read(min(self._stored_left, _CHUNK))
                if not data:
                    raise CompressedError("the object ends inside a stored ZIP member")
                self._stored_left -= len(data)
                return data
            started = self._next_member()
            if started is None:
                return None
            if started:
                return started

    def _next_member(self) -> bytes | None:
        """Opens the next member (its header read); b"\\n" between two members, b"" before the first, None at the
        archive's end."""
        signature = self._fill(4)
        if signature != ZIP_MAGIC:
            return None  # the central directory (or nothing): no more files
        header = self._exactly(26, "a ZIP file header")
        flags, method, size, name_length, extra_length = struct.unpack("<2xHH8xI4xHH", header)
        name = self._exactly(name_length, "a ZIP file name")
        self._exactly(extra_length, "a ZIP extra field")
        self._descriptor = bool(flags & 8)
        if flags & 1:
            raise CompressedError("an encrypted ZIP member")
        if method == 8:
            self._inflater = zlib.decompressobj(-15)
        elif method == 0:
            if self._descriptor or size == 0xFFFFFFFF:
                raise CompressedError("a stored ZIP member whose size is not in its header")
            self._stored_left = size
        else:
            raise CompressedError(f"a ZIP member compressed with method {method} (deflate and stored are read)")
        if name.endswith(b"/"):
            return b""
        self._members += 1
        return b"\n" if self._members > 1 else b""

    def _skip_descriptor(self) -> None:
        # After a member written as a stream: its crc and sizes (4 bytes each, 8 in ZIP64), after an optional
        # signature. What follows it (the next header, or the central directory) tells the sizes' width.
        if self._fill(4) == b"PK\x07\x08":
            self._fill(4)  # the crc
        self._fill(8)
        following = self._fill(4)
        if following not in _SIGNATURES:
            self._fill(4)
            following = self._fill(4)
        self._put_back(following)

    def _put_back(self, data: bytes) -> None:
        """Read too far: ``data`` is read again first (one layer, however many members)."""
        if isinstance(self.raw, Prefixed):
            self.raw.head = data + self.raw.head
        else:
            self.raw = Prefixed(data, self.raw)


class Prefixed:
    """``raw`` with ``head`` (bytes read from it too soon) read first."""

    def __init__(self, head: bytes, raw: Any):
        self.head, self.raw = head, raw

    def read(self, size: int = -1) -> bytes:
        if not self.head:
            return self.raw.read(size)
        if size < 0 or size >= len(self.head):
            head, self.head = self.head, b""
            return head
        head, self.head = self.head[:size], self.head[size:]
        return head


def _snappy_block(data: bytes) -> bytes:
    from .parquet_codecs import CodecError, snappy  # (only for an object that is Snappy: not at cold start)
    from .thrift_compact import varint

    try:
        size, _ = varint(data, 0)
        return snappy(data, size)
    except (CodecError, IndexError) as exc:
        raise CompressedError(f"snappy: {exc}") from None


def _hadoop_snappy(first: bytes) -> bool:
    """Hadoop's Snappy stream: a block's length (no text begins with a zero byte), then its first chunk's, whose
    raw Snappy begins with its own inflated length, no more than the block's."""
    if len(first) < 9 or first[0] != 0:
        return False
    block, chunk = struct.unpack(">II", first[:8])
    if not 0 < block <= _HADOOP_MAX_BLOCK or not 0 < chunk <= _HADOOP_MAX_BLOCK:
        return False
    from .thrift_compact import varint

    try:
        inflated, _ = varint(first, 8)
    except IndexError:
        return False
    return 0 < inflated <= block
